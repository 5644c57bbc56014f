//! Building images.
