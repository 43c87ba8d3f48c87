/* What the engine's C-API modules (_messages, _put, _send) share: their heap types' instances
 * and the ABI check every one of them answers. */
#ifndef RMQ_PYTYPE_H
#define RMQ_PYTYPE_H
#include <Python.h>
#include "rmq_internal.h"

/* tp_dealloc of a GC heap type's instance: untrack, drop its references with clear, free it
 * with its type's tp_free, then drop the reference every such instance holds to its type. */
static inline void rmq_heap_dealloc(PyObject *self, inquiry clear) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    clear(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

/* abi_version(): the native ABI the module was built for (_native/__init__.py refuses a stale
 * build); RMQ_ABI_METHOD is its entry in a module's method table. */
static inline PyObject *rmq_py_abi_version(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyLong_FromLong(RMQ_ABI);
}
#define RMQ_ABI_METHOD \
    {"abi_version", rmq_py_abi_version, METH_NOARGS, "the native ABI this module was built for"}

#endif
