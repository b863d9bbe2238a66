//! Workloads (in progress).
