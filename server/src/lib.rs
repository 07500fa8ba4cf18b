//! Intake sync server: a placeholder until the sync-server issue lands.
