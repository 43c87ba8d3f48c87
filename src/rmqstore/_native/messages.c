/* rmqstore._native._messages: the stored-message objects of a read, built in one call.
 *
 * A CPython extension (limited API), apart from the cffi module because cffi cannot hand back
 * Python objects: building a thousand messages a read through Python constructors cost more
 * than the read itself. MessageBase holds the 16 fields rmq_parse reports (record.RecordField
 * order, positions relative to the segment view), the segment's memoryview and the body;
 * rmqstore.message.Message subclasses it with the lazily decoded fields. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "rmq_internal.h"
#include "rmq_pytype.h"

enum { NF = 16, SYSFLAG_COMPRESSED = 0x1 };

typedef struct {
    PyObject_HEAD
    PyObject *view; /* the segment's memoryview: the other fields are decoded from it */
    PyObject *body; /* bytes; NULL while a compressed body is not inflated yet */
    int64_t f[NF];
    int64_t max_body;
} MessageObject;

static PyTypeObject *message_type; /* MessageBase, made once at import */

static int msg_traverse(MessageObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self)); /* a heap type's instance holds its type */
    Py_VISIT(self->view);
    Py_VISIT(self->body);
    return 0;
}

static int msg_clear(MessageObject *self) {
    Py_CLEAR(self->view);
    Py_CLEAR(self->body);
    return 0;
}

static void msg_dealloc(MessageObject *self) {
    rmq_heap_dealloc((PyObject *)self, (inquiry)msg_clear);
}

/* Copy body bytes out of view (the buffer already exported as vb), bounds checked. */
static PyObject *body_from(const Py_buffer *vb, int64_t pos, int64_t len) {
    if (pos < 0 || len < 0 || pos + len > (int64_t)vb->len) {
        PyErr_Format(PyExc_ValueError, "body [%lld, +%lld) outside its segment view",
                     (long long)pos, (long long)len);
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)vb->buf + pos, (Py_ssize_t)len);
}

/* Message(view, fields, base, body, max_body_bytes): fields[base:base + 16] are rmq_parse's;
 * body None takes an uncompressed body from view now and leaves a compressed one unset. */
static PyObject *msg_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"view", "fields", "base", "body", "max_body_bytes", NULL};
    PyObject *view, *fields, *body = Py_None;
    Py_ssize_t base;
    long long max_body;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnOL", names, &view, &fields, &base,
                                     &body, &max_body))
        return NULL;
    MessageObject *self = (MessageObject *)PyType_GenericAlloc(tp, 0);
    if (!self) return NULL;
    PyObject_GC_UnTrack(self); /* as build's: no cycle can run through a message */
    for (int k = 0; k < NF; k++) {
        PyObject *item = PySequence_GetItem(fields, base + k);
        if (!item) goto fail;
        self->f[k] = PyLong_AsLongLong(item);
        Py_DECREF(item);
        if (self->f[k] == -1 && PyErr_Occurred()) goto fail;
    }
    self->max_body = max_body;
    Py_INCREF(view);
    self->view = view;
    if (body != Py_None) {
        Py_INCREF(body);
        self->body = body;
    } else if (!(self->f[5] & SYSFLAG_COMPRESSED)) {
        Py_buffer vb;
        if (PyObject_GetBuffer(view, &vb, PyBUF_SIMPLE) < 0) goto fail;
        self->body = body_from(&vb, self->f[10], self->f[11]);
        PyBuffer_Release(&vb);
        if (!self->body) goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* body: the stored one, or (compressed) what the subclass's _inflate() makes of it, kept. */
static PyObject *msg_get_body(MessageObject *self, void *closure) {
    (void)closure;
    if (!self->body) {
        PyObject *body = PyObject_CallMethod((PyObject *)self, "_inflate", NULL);
        if (!body) return NULL;
        self->body = body;
    }
    Py_INCREF(self->body);
    return self->body;
}

#define FIELD(name, k, doc) \
    {name, T_LONGLONG, offsetof(MessageObject, f) + (k) * sizeof(int64_t), READONLY, doc}

static PyMemberDef msg_members[] = {
    FIELD("size", 0, "TOTALSIZE: the stored record's length in bytes"),
    FIELD("queue_id", 1, NULL),
    FIELD("flag", 2, NULL),
    FIELD("queue_offset", 3, NULL),
    FIELD("commitlog_offset", 4, NULL),
    FIELD("sysflag", 5, NULL),
    FIELD("born_timestamp", 6, NULL),
    FIELD("store_timestamp", 7, NULL),
    FIELD("reconsume_times", 8, NULL),
    FIELD("prepared_transaction_offset", 9, NULL),
    FIELD("_body_pos", 10, NULL),
    FIELD("_body_len", 11, NULL),
    FIELD("_topic_pos", 12, NULL),
    FIELD("_topic_len", 13, NULL),
    FIELD("_props_pos", 14, NULL),
    FIELD("_props_len", 15, NULL),
    {"_max_body", T_LONGLONG, offsetof(MessageObject, max_body), READONLY, NULL},
    {"_view", T_OBJECT_EX, offsetof(MessageObject, view), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef msg_getset[] = {
    {"body", (getter)msg_get_body, NULL, "the body (a copy; a compressed one inflated)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot msg_slots[] = {
    {Py_tp_new, msg_new},
    {Py_tp_dealloc, msg_dealloc},
    {Py_tp_traverse, msg_traverse},
    {Py_tp_clear, msg_clear},
    {Py_tp_members, msg_members},
    {Py_tp_getset, msg_getset},
    {Py_tp_doc, "A stored message's parsed fields, its segment's view and its body."},
    {0, NULL},
};

static PyType_Spec msg_spec = {
    "rmqstore._native._messages.MessageBase", sizeof(MessageObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, msg_slots,
};

/* build(cls, fields, n, views, first, max_body) -> list of n cls instances.
 * fields: RMQ_MSG_FIELDS int64 per message (rmq_read_queue's out); views[i]: the memoryview
 * of table segment first + i. Bodies of uncompressed records are copied now; compressed ones
 * are left for _inflate. */
static PyObject *build(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *cls, *fields, *views;
    Py_ssize_t n, first;
    long long max_body;
    if (!PyArg_ParseTuple(args, "OOnO!nL", &cls, &fields, &n, &PyList_Type, &views, &first,
                          &max_body))
        return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, message_type)) {
        PyErr_SetString(PyExc_TypeError, "build: cls must subclass MessageBase");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    Py_ssize_t n_views = PyList_Size(views);
    Py_buffer fb;
    if (PyObject_GetBuffer(fields, &fb, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *out = NULL;
    Py_buffer *vbs = PyMem_Calloc(n_views ? (size_t)n_views : 1, sizeof(Py_buffer));
    Py_ssize_t got = 0;
    if (!vbs) {
        PyErr_NoMemory();
        goto done;
    }
    if (n < 0 || (size_t)n * RMQ_MSG_FIELDS * sizeof(int64_t) > (size_t)fb.len) {
        PyErr_SetString(PyExc_ValueError, "build: fields shorter than n messages");
        goto done;
    }
    for (; got < n_views; got++)
        if (PyObject_GetBuffer(PyList_GetItem(views, got), &vbs[got], PyBUF_SIMPLE) < 0)
            goto done;
    out = PyList_New(n);
    if (!out) goto done;
    const int64_t *all = fb.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *f = all + i * RMQ_MSG_FIELDS;
        Py_ssize_t si = (Py_ssize_t)f[16] - first;
        if (si < 0 || si >= n_views) {
            PyErr_Format(PyExc_ValueError, "build: segment %lld has no view", (long long)f[16]);
            Py_CLEAR(out);
            goto done;
        }
        MessageObject *m = (MessageObject *)PyType_GenericAlloc(tp, 0);
        if (!m) {
            Py_CLEAR(out);
            goto done;
        }
        /* Holding only bytes, a memoryview and ints, a message can be in no cycle: left
         * untracked, a read's thousand new objects cost the collector nothing. */
        PyObject_GC_UnTrack(m);
        PyList_SetItem(out, i, (PyObject *)m); /* out owns m from here, errors included */
        memcpy(m->f, f, sizeof m->f);
        m->max_body = max_body;
        m->view = PyList_GetItem(views, si);
        Py_INCREF(m->view);
        if (!(f[5] & SYSFLAG_COMPRESSED) && !(m->body = body_from(&vbs[si], f[10], f[11]))) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(&vbs[k]);
    PyMem_Free(vbs);
    PyBuffer_Release(&fb);
    return out;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS, "build(cls, fields, n, views, first, max_body) -> list"},
    RMQ_ABI_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rmqstore._native._messages", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__messages(void) {
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    message_type = (PyTypeObject *)PyType_FromSpec(&msg_spec);
    if (!message_type || PyModule_AddObject(m, "MessageBase", (PyObject *)message_type) < 0) {
        Py_XDECREF(message_type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(message_type); /* the module's reference was stolen; this one is ours */
    return m;
}
