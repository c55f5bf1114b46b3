"""PostgreSQL change data capture: logical replication (pgoutput) onto the bus in a Debezium envelope."""
