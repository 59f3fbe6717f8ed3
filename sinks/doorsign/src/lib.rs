//! Door-sign sink: room status pages (HTML, JSON, PNG for e-paper) and pushes
