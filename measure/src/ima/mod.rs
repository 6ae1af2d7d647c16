//! Linux IMA measurement lists.
