//! The avp agent (filled by the agent issue).
