//! playbooks (placeholder until its issue lands).
