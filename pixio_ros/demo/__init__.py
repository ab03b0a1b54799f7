"""`pixio-ros demo`'s library: a depth head that learns on a random encoder, and the live run.

`learning` writes the synthetic training and held-out bags, trains a head on the frozen random
encoder within a time budget, exports the trained and the untrained head and scores both on the
held-out bag; `live` runs pixio_node on the held-out bag over DDS, records what it publishes
and summarises it. The command (`pixio_ros.commands.demo`) only parses options and prints.
"""
