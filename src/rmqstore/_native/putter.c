/* rmqstore._native._put: the embedded store's single put in one Python call, and its result.
 *
 * A CPython extension (limited API) beside the cffi module because a put's cost was its Python
 * calls, not its append: two Python frames, a cffi call that dropped and took back the GIL, and
 * a result built attribute by attribute cost five times the encode. Putter.put takes the plain
 * path of StoreWriter.put (a topic and queue put to before, a bytes body, no options) in C: the
 * put lock, rmq_put_simple (its address handed over from the cffi module, so the append exists
 * once), the PutResult, the arrival wake-up and the append hook. Any other call goes to the
 * Python put unchanged, which also retries an append that asked for a roll (a refused append
 * changes nothing a second attempt would not see again). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include "rmq_internal.h"

typedef int64_t (*put_simple_fn)(rmq_log *, rmq_queue *, const char *, int32_t);

/* -- PutResultBase: rmqstore.message.PutResult's fields ---------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *status;
    PyObject *host; /* the store host as stored (8 or 20 bytes): msg_id's first part */
    long long queue_id;
    long long queue_offset;
    long long commitlog_offset;
    long long store_timestamp;
} ResultObject;

static PyTypeObject *result_base;

static int result_traverse(ResultObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->status);
    Py_VISIT(self->host);
    return 0;
}

static int result_clear(ResultObject *self) {
    Py_CLEAR(self->status);
    Py_CLEAR(self->host);
    return 0;
}

static void result_dealloc(ResultObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    result_clear(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

static ResultObject *result_alloc(PyTypeObject *tp, PyObject *status, long long queue_id,
                                  long long queue_offset, long long commitlog_offset,
                                  long long store_timestamp, PyObject *host) {
    ResultObject *r = (ResultObject *)PyType_GenericAlloc(tp, 0);
    if (!r) return NULL;
    PyObject_GC_UnTrack(r); /* it holds an enum member and bytes: no cycle runs through it */
    Py_INCREF(status);
    r->status = status;
    Py_INCREF(host);
    r->host = host;
    r->queue_id = queue_id;
    r->queue_offset = queue_offset;
    r->commitlog_offset = commitlog_offset;
    r->store_timestamp = store_timestamp;
    return r;
}

/* PutResult(status, queue_id, queue_offset, commitlog_offset, store_timestamp, host) */
static PyObject *result_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"status", "queue_id", "queue_offset", "commitlog_offset",
                            "store_timestamp", "host", NULL};
    PyObject *status, *host;
    long long queue_id, queue_offset, commitlog_offset, store_timestamp;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLLLLO", names, &status, &queue_id,
                                     &queue_offset, &commitlog_offset, &store_timestamp, &host))
        return NULL;
    return (PyObject *)result_alloc(tp, status, queue_id, queue_offset, commitlog_offset,
                                    store_timestamp, host);
}

static PyMemberDef result_members[] = {
    {"status", T_OBJECT_EX, offsetof(ResultObject, status), 0, NULL},
    {"_host", T_OBJECT_EX, offsetof(ResultObject, host), 0, NULL},
    {"queue_id", T_LONGLONG, offsetof(ResultObject, queue_id), 0, NULL},
    {"queue_offset", T_LONGLONG, offsetof(ResultObject, queue_offset), 0, NULL},
    {"commitlog_offset", T_LONGLONG, offsetof(ResultObject, commitlog_offset), 0, NULL},
    {"store_timestamp", T_LONGLONG, offsetof(ResultObject, store_timestamp), 0, NULL},
    {NULL},
};

static PyType_Slot result_slots[] = {
    {Py_tp_new, result_new},
    {Py_tp_dealloc, result_dealloc},
    {Py_tp_traverse, result_traverse},
    {Py_tp_clear, result_clear},
    {Py_tp_members, result_members},
    {0, NULL},
};

static PyType_Spec result_spec = {
    "rmqstore._native._put.PutResultBase", sizeof(ResultObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, result_slots,
};

/* -- Putter --------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    put_simple_fn put_simple;
    rmq_log *log;
    PyObject *log_owner;   /* keeps *log allocated */
    PyObject *targets;     /* queue id or None -> {topic: (rmq_queue address, its owner)} */
    PyObject *acquire;     /* the put lock's acquire and release */
    PyObject *release;
    PyObject *notify;      /* the arrival condition's notify_all */
    PyObject *slow;        /* StoreWriter's Python put: every call the plain path does not take */
    PyObject *durable;     /* None, or (result) -> result once it is on disk (sync flush) */
    PyObject *result_type; /* rmqstore.message.PutResult */
    PyObject *status_ok;
    PyObject *host;
    PyObject *on_append;   /* None, or called after every append, under the put lock */
    Py_ssize_t plain_limit; /* bodies this long or longer take the Python put */
    int refusing;          /* closed, disk full or a replica: the Python put raises */
    int waiters;           /* callers in wait_for_message (the put lock guards it) */
} PutterObject;

static PyObject *queue_id_name; /* "queue_id", interned */

static int putter_traverse(PutterObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->log_owner);
    Py_VISIT(self->targets);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->notify);
    Py_VISIT(self->slow);
    Py_VISIT(self->durable);
    Py_VISIT(self->result_type);
    Py_VISIT(self->status_ok);
    Py_VISIT(self->host);
    Py_VISIT(self->on_append);
    return 0;
}

static int putter_clear(PutterObject *self) {
    Py_CLEAR(self->log_owner);
    Py_CLEAR(self->targets);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->notify);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->durable);
    Py_CLEAR(self->result_type);
    Py_CLEAR(self->status_ok);
    Py_CLEAR(self->host);
    Py_CLEAR(self->on_append);
    return 0;
}

static void putter_dealloc(PutterObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    putter_clear(self);
    freefunc free_fn = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_fn(self);
    Py_DECREF(tp);
}

/* Putter(put_simple, log, log_owner, targets, lock, arrival, slow, durable, result_type,
 *        status_ok, host, plain_limit): put_simple and log are addresses (rmq_put_simple's,
 * the Appender's rmq_log) that log_owner keeps valid; lock and arrival are the put lock and
 * the condition over it. */
static PyObject *putter_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"put_simple", "log", "log_owner", "targets", "lock", "arrival",
                            "slow", "durable", "result_type", "status_ok", "host",
                            "plain_limit", NULL};
    PyObject *fn_addr, *log_addr, *log_owner, *targets, *lock, *arrival, *slow, *durable;
    PyObject *result_type, *status_ok, *host;
    Py_ssize_t plain_limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!OO!OOOOOOOn", names, &PyLong_Type,
                                     &fn_addr, &PyLong_Type, &log_addr, &log_owner,
                                     &PyDict_Type, &targets, &lock, &arrival, &slow, &durable,
                                     &result_type, &status_ok, &host, &plain_limit))
        return NULL;
    if (!PyType_Check(result_type) ||
        !PyType_IsSubtype((PyTypeObject *)result_type, result_base)) {
        PyErr_SetString(PyExc_TypeError, "result_type must subclass PutResultBase");
        return NULL;
    }
    PutterObject *self = (PutterObject *)PyType_GenericAlloc(tp, 0);
    if (!self) return NULL;
    self->put_simple = (put_simple_fn)PyLong_AsVoidPtr(fn_addr);
    self->log = (rmq_log *)PyLong_AsVoidPtr(log_addr);
    self->acquire = PyObject_GetAttrString(lock, "acquire");
    self->release = PyObject_GetAttrString(lock, "release");
    self->notify = PyObject_GetAttrString(arrival, "notify_all");
    if (PyErr_Occurred() || !self->put_simple || !self->log) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null address");
        Py_DECREF(self);
        return NULL;
    }
    PyObject **keep[] = {&self->log_owner, &self->targets, &self->slow, &self->durable,
                         &self->result_type, &self->status_ok, &self->host, &self->on_append};
    PyObject *given[] = {log_owner, targets, slow, durable, result_type, status_ok, host,
                         Py_None};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        Py_INCREF(given[i]);
        *keep[i] = given[i];
    }
    self->plain_limit = plain_limit;
    return (PyObject *)self;
}

/* The Python put with the arguments this call was given. */
static PyObject *put_slowly(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    PyObject *pos = PyTuple_New(nargs), *kw = nkw ? PyDict_New() : NULL, *out = NULL;
    if (!pos || (nkw && !kw)) goto done;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SetItem(pos, i, args[i]);
    }
    for (Py_ssize_t i = 0; i < nkw; i++)
        if (PyDict_SetItem(kw, PyTuple_GetItem(kwnames, i), args[nargs + i]) < 0) goto done;
    out = PyObject_Call(self->slow, pos, kw);
done:
    Py_XDECREF(pos);
    Py_XDECREF(kw);
    return out;
}

static int call_none(PyObject *fn) {
    PyObject *r = PyObject_CallNoArgs(fn);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* The plain target of (queue_id, topic), a new reference, or NULL (no error set). */
static PyObject *plain_target(PutterObject *self, PyObject *queue_id, PyObject *topic) {
    PyObject *by_topic = PyDict_GetItemWithError(self->targets, queue_id);
    PyObject *t = by_topic ? PyDict_GetItemWithError(by_topic, topic) : NULL;
    if (!t) {
        PyErr_Clear(); /* an unhashable argument: the Python put says what is wrong */
        return NULL;
    }
    Py_INCREF(t); /* the table may drop it while acquire waits without the GIL */
    return t;
}

/* put(topic, body, *, queue_id=None, options=None, **fields) -> PutResult: StoreWriter.put */
static PyObject *putter_put(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    PyObject *queue_id = Py_None;
    if (nargs != 2 || self->refusing) return put_slowly(self, args, nargs, kwnames);
    if (kwnames) {
        PyObject *name = PyTuple_GetItem(kwnames, 0);
        if (PyTuple_Size(kwnames) != 1 ||
            (name != queue_id_name && PyUnicode_Compare(name, queue_id_name) != 0))
            return put_slowly(self, args, nargs, kwnames);
        queue_id = args[2];
    }
    PyObject *body = args[1];
    Py_ssize_t len = PyBytes_CheckExact(body) ? PyBytes_Size(body) : self->plain_limit;
    PyObject *target = len < self->plain_limit ? plain_target(self, queue_id, args[0]) : NULL;
    rmq_queue *q = NULL;
    if (target && PyTuple_Check(target) && PyTuple_Size(target) == 2)
        q = (rmq_queue *)PyLong_AsVoidPtr(PyTuple_GetItem(target, 0));
    if (!q) {
        Py_XDECREF(target);
        if (PyErr_Occurred()) return NULL;
        return put_slowly(self, args, nargs, kwnames);
    }
    if (call_none(self->acquire) < 0) {
        Py_DECREF(target);
        return NULL;
    }
    int64_t qoff = self->refusing ? -1 : self->put_simple(self->log, q, PyBytes_AsString(body),
                                                          (int32_t)len);
    PyObject *result = NULL;
    int failed = 0;
    if (qoff >= 0) {
        result = (PyObject *)result_alloc((PyTypeObject *)self->result_type, self->status_ok,
                                          q->queue_id, qoff, self->log->last_phys,
                                          self->log->last_ts, self->host);
        failed = !result || (self->waiters && call_none(self->notify) < 0) ||
                 (self->on_append != Py_None && call_none(self->on_append) < 0);
    }
    Py_DECREF(target);
    if (failed) { /* the record is stored, as with the Python put when its hook raised */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        call_none(self->release);
        PyErr_Restore(type, value, tb);
        Py_XDECREF(result);
        return NULL;
    }
    if (call_none(self->release) < 0) {
        Py_XDECREF(result);
        return NULL;
    }
    if (qoff < 0) return put_slowly(self, args, nargs, kwnames); /* rolls, or raises */
    if (self->durable == Py_None) return result;
    PyObject *waited = PyObject_CallFunctionObjArgs(self->durable, result, NULL);
    Py_DECREF(result);
    return waited;
}

static PyMethodDef putter_methods[] = {
    {"put", (PyCFunction)(void (*)(void))putter_put, METH_FASTCALL | METH_KEYWORDS,
     "StoreWriter.put: the plain path here, any other call through the Python put"},
    {NULL},
};

static PyMemberDef putter_members[] = {
    {"refusing", T_INT, offsetof(PutterObject, refusing), 0, NULL},
    {"waiters", T_INT, offsetof(PutterObject, waiters), 0, NULL},
    {"on_append", T_OBJECT, offsetof(PutterObject, on_append), 0, NULL},
    {NULL},
};

static PyType_Slot putter_slots[] = {
    {Py_tp_new, putter_new},
    {Py_tp_dealloc, putter_dealloc},
    {Py_tp_traverse, putter_traverse},
    {Py_tp_clear, putter_clear},
    {Py_tp_methods, putter_methods},
    {Py_tp_members, putter_members},
    {0, NULL},
};

static PyType_Spec putter_spec = {
    "rmqstore._native._put.Putter", sizeof(PutterObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, putter_slots,
};

/* -- module ------------------------------------------------------------------------------- */

static PyObject *abi_version(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyLong_FromLong(RMQ_ABI);
}

static PyMethodDef methods[] = {
    {"abi_version", abi_version, METH_NOARGS, "the native ABI this module was built for"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rmqstore._native._put", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__put(void) {
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    queue_id_name = PyUnicode_InternFromString("queue_id");
    result_base = (PyTypeObject *)PyType_FromSpec(&result_spec);
    PyObject *putter = PyType_FromSpec(&putter_spec);
    if (!queue_id_name || !result_base || !putter ||
        PyModule_AddObject(m, "PutResultBase", (PyObject *)result_base) < 0) {
        Py_XDECREF(putter);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(result_base); /* the module's reference went to AddObject */
    if (PyModule_AddObject(m, "Putter", putter) < 0) {
        Py_DECREF(putter);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
