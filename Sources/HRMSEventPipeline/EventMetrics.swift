import Metrics

/// The pipeline's metric names, in one place (Prometheus names; labels as dimensions).
public enum EventMetrics {
    public static func produced(eventType: String, topic: String) -> Counter {
        Counter(label: "hrms_events_produced_total", dimensions: [("event_type", eventType), ("topic", topic)])
    }
    public static func consumed(eventType: String, group: String) -> Counter {
        Counter(label: "hrms_events_consumed_total", dimensions: [("event_type", eventType), ("group", group)])
    }
    public static func dlqRecords(topic: String) -> Counter {
        Counter(label: "hrms_dlq_records_total", dimensions: [("topic", topic)])
    }
    public static func consumerRetries(group: String) -> Counter {
        Counter(label: "hrms_consumer_retries_total", dimensions: [("group", group)])
    }
    public static func outboxDepth(service: String) -> Gauge {
        Gauge(label: "hrms_outbox_depth", dimensions: [("service", service)])
    }
    public static func outboxOldestAge(service: String) -> Gauge {
        Gauge(label: "hrms_outbox_oldest_age_seconds", dimensions: [("service", service)])
    }
    /// Events delivered over the old HTTP endpoints (`http`/`dual` modes, or the `kafka` mode's fallback).
    public static func httpDelivered(eventType: String) -> Counter {
        Counter(label: "hrms_events_http_fallback_total", dimensions: [("event_type", eventType)])
    }
}
