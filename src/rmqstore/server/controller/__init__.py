"""The controller of RocketMQ 5's controller mode (automatic failover), on etcd: the rules
(replicas.py, elect.py) as pure functions over a broker set's state (state.py), decided and
compare-and-set by the active controller (service.py, leadership.py) in a consensus store
(metastore.py; etcd_store.py), served on the NameServer's port (handlers.py)."""
