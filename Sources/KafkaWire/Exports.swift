@_exported import KafkaProtocol
@_exported import KafkaRecords
