// Filled in by the transport layer work (exceptions across processes).
