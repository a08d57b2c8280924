// Filled in by the transport layer work (named callables).
