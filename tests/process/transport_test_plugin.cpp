// SPDX-License-Identifier: MIT
// A module that transport_test loads with dlopen after the module table was first read, and
// unloads again, to prove that the table follows the loader.

extern "C" int mproc_test_plugin_entry(int x) { return 100 + x; }
