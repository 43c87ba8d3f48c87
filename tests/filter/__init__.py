"""Tests of the SQL92 property filter (rmqstore.filter)."""
