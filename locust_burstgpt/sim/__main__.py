"""``python -m locust_burstgpt.sim``: run the simulator (used by ``SimulatorProcess``)."""

import sys

from locust_burstgpt.sim.launch import main

sys.exit(main())
