/* ReadFront: a server connection's data_received while its reads are plain sends, in C.
 *
 * uvloop calls a protocol's data_received as it found it when the transport was made; a
 * server connection whose broker serves sends natively (send_native.py) puts a ReadFront
 * there. Disarmed, it hands each read to the connection's Python data_received. Armed (by
 * send_native.py's on_read, after a read it served whole on an otherwise quiet connection),
 * it makes that Python path's steps itself: the idle clock, SendPath.serve, the count, the
 * answers' one write, without the two Python calls per read that were most of a small
 * send's Python. It hands the read back to Python, and stays disarmed until on_read arms it
 * again, as soon as anything those steps assumed may have changed: the connection serves a
 * request in a task, or its Python reader ran (net/connection.py disarms it then, and when
 * it cork its writes or closes); a held pull or a new listener wants a wake-up; the
 * Dispatcher's read hook or observer is another; the send path's epoch moved (a topic
 * entered or left the fast table, the counting changed). Serve is given no notes to make.
 * A read whose answers serve held (a SYNC_MASTER's sends, which wait for a slave) is handed
 * to the `hold` arm() was given, with the read's start (time.perf_counter's clock) for its
 * answer's latency; a front armed without one is never given flags that hold. */
#include <time.h>
#include "send_path.h"
/* calls through PyObject_CallFunctionObjArgs: CallOneArg is not in 3.11's limited API */
#include "rmq_pytype.h"

typedef struct {
    PyObject_HEAD
    PyObject *conn;        /* the connection, whose last_io_at is kept */
    PyObject *slow;        /* its Python data_received (bound) */
    PyObject *handle;      /* its _handle (bound): what serve did not take */
    PyObject *failed;      /* its _read_failed (bound): an error while serving */
    /* what arm() was given, and what it read then */
    SendPathObject *path;
    PyObject *dispatcher;  /* the Dispatcher's __dict__: read_hook and observer, read there */
    PyObject *hook, *observer;
    PyObject *tasks, *pulls, *listened, *write;
    PyObject *hold;        /* hold(answers, held, started): a read serve held; NULL: none */
    PyObject *host, *max_frame, *flags;
    Py_ssize_t listened_seen;
    unsigned long long epoch;
    int armed;
    double io_at;  /* the last last_io_at set */
} ReadFrontObject;

static PyObject *n_read_hook, *n_observer, *n_last_io_at, *n_transport, *n_write, *n_tasks,
    *n_dict;

static int intern_front_names(void) {
    struct { PyObject **name; const char *text; } all[] = {
        {&n_read_hook, "read_hook"}, {&n_observer, "observer"}, {&n_last_io_at, "last_io_at"},
        {&n_transport, "_transport"}, {&n_write, "write"}, {&n_tasks, "_tasks"},
        {&n_dict, "__dict__"}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!*all[i].name && !(*all[i].name = PyUnicode_InternFromString(all[i].text)))
            return -1;
    return 0;
}

static int front_traverse(ReadFrontObject *self, visitproc visit, void *arg) {
    Py_VISIT((PyObject *)Py_TYPE((PyObject *)self));
    Py_VISIT(self->conn);
    Py_VISIT(self->slow);
    Py_VISIT(self->handle);
    Py_VISIT(self->failed);
    Py_VISIT((PyObject *)self->path);
    Py_VISIT(self->dispatcher);
    Py_VISIT(self->hook);
    Py_VISIT(self->observer);
    Py_VISIT(self->tasks);
    Py_VISIT(self->pulls);
    Py_VISIT(self->listened);
    Py_VISIT(self->write);
    Py_VISIT(self->hold);
    Py_VISIT(self->host);
    Py_VISIT(self->max_frame);
    Py_VISIT(self->flags);
    return 0;
}

static void drop_arming(ReadFrontObject *self) {
    self->armed = 0;
    Py_CLEAR(self->path);
    Py_CLEAR(self->dispatcher);
    Py_CLEAR(self->hook);
    Py_CLEAR(self->observer);
    Py_CLEAR(self->tasks);
    Py_CLEAR(self->pulls);
    Py_CLEAR(self->listened);
    Py_CLEAR(self->write);
    Py_CLEAR(self->hold);
    Py_CLEAR(self->host);
    Py_CLEAR(self->max_frame);
    Py_CLEAR(self->flags);
}

static int front_clear(ReadFrontObject *self) {
    drop_arming(self);
    Py_CLEAR(self->conn);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->handle);
    Py_CLEAR(self->failed);
    return 0;
}

static void front_dealloc(ReadFrontObject *self) {
    rmq_heap_dealloc((PyObject *)self, (inquiry)front_clear);
}

/* ReadFront(conn, slow, handle, failed) */
static PyObject *front_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"conn", "slow", "handle", "failed", NULL};
    PyObject *conn, *slow, *handle, *failed;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO", kw, &conn, &slow, &handle, &failed))
        return NULL;
    if (!PyCallable_Check(slow) || !PyCallable_Check(handle) || !PyCallable_Check(failed)) {
        PyErr_SetString(PyExc_TypeError, "slow, handle and failed must be callable");
        return NULL;
    }
    if (intern_front_names() < 0) return NULL;
    ReadFrontObject *self = (ReadFrontObject *)PyType_GenericAlloc(tp, 0);
    if (!self) return NULL;
    self->conn = Py_NewRef(conn);
    self->slow = Py_NewRef(slow);
    self->handle = Py_NewRef(handle);
    self->failed = Py_NewRef(failed);
    return (PyObject *)self;
}

/* arm(path, dispatcher, pulls, listened, host, max_frame, flags[, hold]): serve this
 * connection's reads here with these, while the Dispatcher's read_hook and observer stay what
 * they are now, no pull waits, the listeners stay as many and the path's epoch stays the
 * same; reads serve holds go to hold (None, or left out: flags never hold). */
static PyObject *front_arm(ReadFrontObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *hold = nargs == 8 && args[7] != Py_None ? args[7] : NULL;
    if (nargs < 7 || nargs > 8 || !PyObject_TypeCheck(args[0], rmq_send_path_type) ||
        (args[4] != Py_None && !PyBytes_Check(args[4])) || !PyLong_Check(args[5]) ||
        !PyLong_Check(args[6]) || (hold && !PyCallable_Check(hold))) {
        PyErr_SetString(PyExc_TypeError, "arm(path, dispatcher, pulls, listened, host, "
                        "max_frame, flags[, hold])");
        return NULL;
    }
    drop_arming(self);
    /* read from the instance's dict (no type lookup per read): attributes held elsewhere
     * (a property) are not there, and such a Dispatcher gets no front */
    PyObject *dict = PyObject_GetAttr(args[1], n_dict);
    PyObject *hook = dict && PyDict_Check(dict) ? PyDict_GetItemWithError(dict, n_read_hook)
                                                : NULL;
    PyObject *observer = hook ? PyDict_GetItemWithError(dict, n_observer) : NULL;
    PyObject *transport = observer ? PyObject_GetAttr(self->conn, n_transport) : NULL;
    PyObject *write = transport ? PyObject_GetAttr(transport, n_write) : NULL;
    PyObject *tasks = write ? PyObject_GetAttr(self->conn, n_tasks) : NULL;
    Py_ssize_t seen = tasks && PyDict_Check(args[2]) && PyDict_Check(args[3])
        ? PyDict_Size(args[3]) : -1;
    Py_XDECREF(transport);
    if (seen < 0 || hook == Py_None || !PySet_Check(tasks)) {
        Py_XDECREF(dict);
        Py_XDECREF(write);
        Py_XDECREF(tasks);
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;  /* nothing to arm for */
    }
    self->path = (SendPathObject *)Py_NewRef(args[0]);
    self->dispatcher = dict;
    self->pulls = Py_NewRef(args[2]);
    self->listened = Py_NewRef(args[3]);
    self->host = Py_NewRef(args[4]);
    self->max_frame = Py_NewRef(args[5]);
    self->flags = Py_NewRef(args[6]);
    self->hook = Py_NewRef(hook);
    self->observer = Py_NewRef(observer);
    self->write = write;
    self->hold = hold ? Py_NewRef(hold) : NULL;
    self->tasks = tasks;
    self->listened_seen = seen;
    self->epoch = self->path->epoch;
    self->armed = 1;
    Py_RETURN_NONE;
}

static PyObject *front_disarm(ReadFrontObject *self, PyObject *unused) {
    (void)unused;
    drop_arming(self);
    Py_RETURN_NONE;
}

static PyObject *front_armed(ReadFrontObject *self, void *unused) {
    (void)unused;
    return PyBool_FromLong(self->armed);
}

/* Whether the read may be served here: what arm() assumed still holds. -1 with an error. */
static int still_plain(ReadFrontObject *self) {
    if (!self->armed || self->path->epoch != self->epoch || PySet_Size(self->tasks) ||
        PyDict_Size(self->pulls) || PyDict_Size(self->listened) != self->listened_seen)
        return 0;
    /* borrowed, only compared */
    PyObject *hook = PyDict_GetItemWithError(self->dispatcher, n_read_hook);
    PyObject *observer = hook ? PyDict_GetItemWithError(self->dispatcher, n_observer) : NULL;
    if (PyErr_Occurred()) return -1;
    return hook == self->hook && observer == self->observer;
}

/* The error set now, as the Python reader's: `failed` logs it and closes this connection. */
static PyObject *read_failed(ReadFrontObject *self) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) PyException_SetTraceback(value, tb);
    drop_arming(self);
    PyObject *out = value ? PyObject_CallFunctionObjArgs(self->failed, value, NULL) : NULL;
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return out;
}

/* What serve did not take of the read: the Python reader's, after these answers. */
static PyObject *rest_to_python(ReadFrontObject *self, PyObject *data, PyObject *taken,
                                PyObject *answers) {
    drop_arming(self);
    PyObject *pair = PyTuple_Pack(2, taken, answers);
    PyObject *out = pair ? PyObject_CallFunctionObjArgs(self->handle, data, Py_False, pair,
                                                       NULL) : NULL;
    Py_XDECREF(pair);
    return out;
}

static PyObject *front_call(ReadFrontObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *data;
    if (kwargs || !PyArg_UnpackTuple(args, "data_received", 1, 1, &data)) return NULL;
    int plain = PyBytes_Check(data) ? still_plain(self) : 0;
    if (plain < 0) return NULL;
    if (!plain) {
        drop_arming(self);
        return PyObject_CallFunctionObjArgs(self->slow, data, NULL);
    }
    /* time.monotonic()'s clock at its tick (a few ms, for the idle sweep): set when it moved */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    double at = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    if (at != self->io_at) {
        PyObject *now = PyFloat_FromDouble(at);
        if (!now || PyObject_SetAttr(self->conn, n_last_io_at, now) < 0) {
            Py_XDECREF(now);
            return NULL;
        }
        Py_DECREF(now);
        self->io_at = at;
    }
    /* a held read's start, on time.perf_counter's clock (CLOCK_MONOTONIC on Linux) */
    double started = 0.0;
    if (self->hold) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        started = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    }
    Py_INCREF((PyObject *)self);  /* what the calls below run may disarm it (its references go) */
    PyObject *write = Py_NewRef(self->write);
    PyObject *hold = Py_XNewRef(self->hold);
    PyObject *serve_args[4] = {data, self->host, self->max_frame, self->flags};
    PyObject *served = rmq_send_serve(self->path, serve_args, 4);
    PyObject *out = NULL;
    if (!served) {
        out = read_failed(self);
    } else if (served == Py_None) {  /* nothing taken: the Python reader's way */
        drop_arming(self);
        out = PyObject_CallFunctionObjArgs(self->handle, data, Py_False, Py_None, NULL);
    } else {
        PyObject *taken = PyTuple_GetItem(served, 0), *answers = PyTuple_GetItem(served, 1);
        PyObject *notes = PyTuple_GetItem(served, 2), *held = PyTuple_GetItem(served, 3);
        Py_ssize_t took = PyLong_AsSsize_t(taken), count = PyLong_AsSsize_t(notes);
        int whole = took == PyBytes_Size(data);
        if ((held != Py_None && !hold) || count < 0) {  /* arm() never gives flags for these */
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "ReadFront: serve held or noted a read");
        } else if (held != Py_None) {  /* its answers wait (for a slave): hold's */
            self->path->front_served += count;
            PyObject *at = PyFloat_FromDouble(started);
            PyObject *r = at ? PyObject_CallFunctionObjArgs(hold, answers, held, at, NULL) : NULL;
            Py_XDECREF(at);
            if (!r) {
                out = read_failed(self);
            } else if (whole) {
                out = r;
            } else {  /* nothing to write now; the rest of the read: the Python reader's */
                Py_DECREF(r);
                PyObject *none = PyBytes_FromStringAndSize(NULL, 0);
                out = none ? rest_to_python(self, data, taken, none) : NULL;
                Py_XDECREF(none);
            }
        } else {
            self->path->front_served += count;
            if (whole)
                out = PyObject_CallFunctionObjArgs(write, answers, NULL);
            else  /* the rest of the read: the Python reader's, after these answers */
                out = rest_to_python(self, data, taken, answers);
        }
        Py_DECREF(served);
    }
    Py_DECREF(write);
    Py_XDECREF(hold);
    Py_DECREF((PyObject *)self);
    return out;
}

static PyMethodDef front_methods[] = {
    {"arm", (PyCFunction)(void (*)(void))front_arm, METH_FASTCALL,
     "serve this connection's reads here while nothing they assume changes"},
    {"disarm", (PyCFunction)front_disarm, METH_NOARGS, "hand every read to Python again"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef front_getset[] = {
    {"armed", (getter)front_armed, NULL, "whether reads are served here", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot front_slots[] = {
    {Py_tp_new, front_new},
    {Py_tp_dealloc, front_dealloc},
    {Py_tp_traverse, front_traverse},
    {Py_tp_clear, front_clear},
    {Py_tp_call, front_call},
    {Py_tp_methods, front_methods},
    {Py_tp_getset, front_getset},
    {0, NULL},
};

static PyType_Spec front_spec = {
    "rmqstore._native._send.ReadFront", sizeof(ReadFrontObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, front_slots,
};

int rmq_front_add(PyObject *module) {
    PyObject *front = PyType_FromSpec(&front_spec);
    if (!front || PyModule_AddObject(module, "ReadFront", front) < 0) {
        Py_XDECREF(front);
        return -1;
    }
    return 0;
}
