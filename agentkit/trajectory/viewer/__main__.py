from agentkit.trajectory.viewer.cli import main

main()
