//! Resolving file-set declarations into sorted layer entries.
