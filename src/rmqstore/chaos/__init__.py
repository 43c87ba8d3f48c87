"""Chaos tests of controller mode (automatic failover), modelled on OpenMessaging Chaos and
Jepsen's total-queue: a local three-node cluster (server/cluster.py), faults (faults.py; real
partitions in network namespaces, netns.py), a history of every send and dequeue
(history.py, workload.py), and the checks over it (checker.py); runner.py ties them together.
The suite runs a short matrix; benches/chaos_long.py the long one."""
