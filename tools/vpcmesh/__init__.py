"""vpcmesh: compile a git repository of VPC nodes into per-node OpenVPN bundles."""

__version__ = "0.1.0"
