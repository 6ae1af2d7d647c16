//! RAII guards for TPM handles: a transient object or session is flushed from the TPM
//! (`TPM2_FlushContext`, TPM 2.0 Part 3 section 28.4), an ESYS reference to a persistent object
//! or NV index is closed (`Esys_TR_Close`), when the guard goes out of scope, on every path.

use std::ops::{Deref, DerefMut};
use tss_esapi::handles::ObjectHandle;
use tss_esapi::Context;

/// What to do with the handle on drop.
#[derive(Clone, Copy)]
pub(crate) enum Release {
    /// A transient object or a session: flush it from the TPM.
    Flush,
    /// A persistent object or NV index: forget ESYS's reference, keep the TPM object.
    Close,
}

/// A borrowed context with one handle to release when dropped. Derefs to the context, so
/// guards nest: the innermost is released first.
pub(crate) struct Guard<'a> {
    ctx: &'a mut Context,
    handle: ObjectHandle,
    release: Release,
}

impl<'a> Guard<'a> {
    pub(crate) fn new(ctx: &'a mut Context, handle: ObjectHandle, release: Release) -> Self {
        Guard {
            ctx,
            handle,
            release,
        }
    }

    pub(crate) fn handle(&self) -> ObjectHandle {
        self.handle
    }
}

impl Deref for Guard<'_> {
    type Target = Context;
    fn deref(&self) -> &Context {
        self.ctx
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Context {
        self.ctx
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Nothing to report to: a failed flush leaves a transient object that the resource
        // manager (tpmrm0) drops with the connection anyway.
        let _ = match self.release {
            Release::Flush => self.ctx.flush_context(self.handle),
            Release::Close => {
                let mut h = self.handle;
                self.ctx.tr_close(&mut h)
            }
        };
    }
}
