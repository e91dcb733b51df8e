//! placeholder: see the issue
