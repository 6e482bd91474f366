package pickle

import "syscall"

// mapPopulate reads the whole mapping in at once instead of fault by fault.
const mapPopulate = syscall.MAP_POPULATE
