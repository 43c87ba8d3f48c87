/* What the C-API modules (_messages, _put) share about their heap types' instances. */
#ifndef RMQ_PYTYPE_H
#define RMQ_PYTYPE_H
#include <Python.h>

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

#endif
