//! inventory (placeholder until its issue lands).
