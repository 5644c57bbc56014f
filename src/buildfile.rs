//! The build file.
