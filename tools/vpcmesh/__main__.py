from vpcmesh.cli import main

main()
