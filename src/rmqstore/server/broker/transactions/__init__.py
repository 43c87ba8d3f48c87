"""Transactional messages: half messages and their op records in the store (bridge), the
ledger of ended ones (ops), END_TRANSACTION (end), the periodic check (check), and what
Broker.start wires (service)."""
