"""The node agent: what runs on each VM."""

# node_exporter's textfile collector reads this folder (Debian's
# prometheus-node-exporter); a VM without it just has one small file there.
METRICS_FILE = "/var/lib/prometheus/node-exporter/vpcmesh.prom"
