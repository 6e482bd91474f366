package pickle

const mapPopulate = 0

// populate does nothing on macOS: the mapping faults in as it is read.
func populate(b []byte) bool { return false }
