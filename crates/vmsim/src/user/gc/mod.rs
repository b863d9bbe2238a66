//! Garbage collectors (in progress).
