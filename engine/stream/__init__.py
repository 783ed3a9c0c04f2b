"""Stream processing over the Kafka event log: the records, the fold into Redis views, the faust worker."""
