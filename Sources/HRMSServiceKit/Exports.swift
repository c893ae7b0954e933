// A service imports only the kit: the framework, the event contract and logging come with it.
@_exported import HRMSEvents
@_exported import Hummingbird
@_exported import Logging
