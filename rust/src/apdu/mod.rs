//! xDLMS APDUs: (to be written)
