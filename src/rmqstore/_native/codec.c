/* rmqstore.protocol._codec: the remoting wire codec's two hot calls, natively.
 *
 * The protocol floor's own extension (limited API, no engine code, imports nothing of
 * rmqstore): a client pays for one frame built and one frame decoded per send, and in Python
 * those were a %-format, a JSON escape, a properties join and a JSON scan with their objects.
 *
 * decode_json_frame(frame) decodes a frame (without its length word) whose header is JSON of
 * the form every peer sends: int32 code/flag/opaque/version, a language string, a string or
 * null remark, extFields with string values, serializeTypeCurrentRPC a string, no string
 * escapes. It returns the RemotingCommand bound with bind(), or None for anything else, which
 * the pure-Python decoder (protocol/json_header.py, the reference) then takes: so a malformed
 * frame gets the reference's error, and the two cannot disagree on what they accept.
 *
 * fill_frame(pieces, values, opaque, body) writes a JsonFrameTemplate's frame: pieces[0],
 * values[0], pieces[1], ..., the opaque, pieces[-1], then the body, behind the length and
 * header words. A str value is JSON-escaped as json.encoder.encode_basestring does, an int
 * written in decimal, a dict written as message properties (name \x01 value \x02 each,
 * escaped). None when a value is anything else or a property would be refused (a separator
 * inside, an empty name, a str that is not valid Unicode): the caller's Python path then
 * builds the frame or raises its own error. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static PyObject *command_cls; /* RemotingCommand */
static PyObject *json_type;   /* SerializeType.JSON */

/* -- decode ------------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* A string without escapes or control characters: its bytes, the cursor past its quote.
 * 0 when it is not one (the caller defers). */
static int raw_string(cursor *c, const char **start, Py_ssize_t *len) {
    if (c->p >= c->end || *c->p != '"') return 0;
    const unsigned char *s = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\' || *c->p < 0x20) return 0;
        c->p++;
    }
    if (c->p >= c->end) return 0;
    *start = (const char *)s;
    *len = c->p - s;
    c->p++;
    return 1;
}

static PyObject *string_value(cursor *c) {
    const char *s;
    Py_ssize_t n;
    if (!raw_string(c, &s, &n)) return NULL;
    PyObject *out = PyUnicode_DecodeUTF8(s, n, "strict");
    if (!out) PyErr_Clear();
    return out;
}

/* The header's names (extFields keys) and its language repeat in every frame: each made once
 * and kept, interned, so that a frame costs no allocation, UTF-8 decode or hash for them and
 * the dict lookups of their readers find them by identity. A slot per hash of the text, the
 * newest text wins it; bounded: NAME_SLOTS strings of at most NAME_MAX_BYTES bytes. Values
 * vary (ids, offsets) and are made anew. Runs with the GIL held, as every call here does. */
#define NAME_SLOTS 256
#define NAME_MAX_BYTES 32

static struct {
    Py_ssize_t len;
    char text[NAME_MAX_BYTES];
    PyObject *str;
} names[NAME_SLOTS];

static PyObject *name_value(cursor *c) {
    const char *s;
    Py_ssize_t n;
    if (!raw_string(c, &s, &n)) return NULL;
    if (n > NAME_MAX_BYTES) {
        PyObject *out = PyUnicode_DecodeUTF8(s, n, "strict");
        if (!out) PyErr_Clear();
        return out;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    h ^= h >> 16;
    Py_ssize_t slot = h & (NAME_SLOTS - 1);
    if (names[slot].str && names[slot].len == n && memcmp(names[slot].text, s, n) == 0)
        return Py_NewRef(names[slot].str);
    PyObject *out = PyUnicode_DecodeUTF8(s, n, "strict");
    if (!out) {
        PyErr_Clear();
        return NULL;
    }
    PyUnicode_InternInPlace(&out);
    PyObject *evicted = names[slot].str;
    names[slot].str = Py_NewRef(out);
    Py_XDECREF(evicted); /* a str: its deallocation runs no code of anyone's */
    names[slot].len = n;
    memcpy(names[slot].text, s, n);
    return out;
}

/* A JSON integer within int32 (no fraction, exponent or leading zero). */
static int int32_value(cursor *c, long *out) {
    int neg = 0;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    const unsigned char *digits = c->p;
    long long v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p - '0');
        if (v > 2147483648LL) return 0;
        c->p++;
    }
    Py_ssize_t n = c->p - digits;
    if (n == 0 || (n > 1 && *digits == '0')) return 0;
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return 0;
    if (neg) v = -v;
    if (v > 2147483647LL) return 0;
    *out = (long)v;
    return 1;
}

static int key_is(const char *key, Py_ssize_t n, const char *name) {
    return (Py_ssize_t)strlen(name) == n && memcmp(key, name, n) == 0;
}

/* extFields: an object of string values, into a new dict; NULL to defer. */
static PyObject *ext_object(cursor *c) {
    if (c->p >= c->end || *c->p != '{') return NULL;
    c->p++;
    PyObject *dict = PyDict_New();
    if (!dict) return NULL;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return dict;
    }
    for (;;) {
        skip_ws(c);
        PyObject *k = name_value(c);
        if (!k) goto defer;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') {
            Py_DECREF(k);
            goto defer;
        }
        c->p++;
        skip_ws(c);
        PyObject *v = string_value(c);
        if (!v) {
            Py_DECREF(k);
            goto defer;
        }
        int rc = PyDict_SetItem(dict, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0) {
            PyErr_Clear();
            goto defer;
        }
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return dict;
        }
        goto defer;
    }
defer:
    Py_DECREF(dict);
    return NULL;
}

enum { SEEN_CODE = 1, SEEN_FLAG = 2, SEEN_OPAQUE = 4, SEEN_VERSION = 8, SEEN_ALL = 15 };

static PyObject *decode_json_frame(PyObject *self, PyObject *arg) {
    char *data;
    Py_ssize_t size;
    if (!command_cls) {
        PyErr_SetString(PyExc_RuntimeError, "_codec.bind() was not called");
        return NULL;
    }
    if (PyBytes_AsStringAndSize(arg, &data, &size) < 0) return NULL;
    if (size < 4) Py_RETURN_NONE;
    const unsigned char *u = (const unsigned char *)data;
    uint32_t word = ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
    Py_ssize_t header_len = word & 0xFFFFFF;
    if ((word >> 24) != 0 || header_len > size - 4) Py_RETURN_NONE;

    cursor c = {u + 4, u + 4 + header_len};
    long ints[4] = {0, 0, 0, 0}; /* code flag opaque version */
    int seen = 0;
    PyObject *language = NULL, *remark = NULL, *ext = NULL, *result = NULL;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') goto done;
    c.p++;
    for (;;) {
        const char *key;
        Py_ssize_t klen;
        skip_ws(&c);
        if (!raw_string(&c, &key, &klen)) goto done;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') goto done;
        c.p++;
        skip_ws(&c);
        int slot = key_is(key, klen, "code") ? 0 : key_is(key, klen, "flag") ? 1
                   : key_is(key, klen, "opaque") ? 2 : key_is(key, klen, "version") ? 3 : -1;
        if (slot >= 0) {
            if (!int32_value(&c, &ints[slot])) goto done;
            seen |= 1 << slot;
        } else if (key_is(key, klen, "language")) {
            Py_XDECREF(language);
            if (!(language = name_value(&c))) goto done;
        } else if (key_is(key, klen, "remark")) {
            Py_CLEAR(remark);
            if (c.end - c.p >= 4 && memcmp(c.p, "null", 4) == 0) {
                c.p += 4;
            } else if (!(remark = string_value(&c))) {
                goto done;
            }
        } else if (key_is(key, klen, "extFields")) {
            Py_XDECREF(ext);
            if (!(ext = ext_object(&c))) goto done;
        } else if (key_is(key, klen, "serializeTypeCurrentRPC")) {
            PyObject *ignored = name_value(&c); /* decoded: the header must be UTF-8 */
            if (!ignored) goto done;
            Py_DECREF(ignored);
        } else {
            goto done; /* a key the reference ignores, whatever its value: left to it */
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        goto done;
    }
    skip_ws(&c);
    if (c.p != c.end || seen != SEEN_ALL || !language || !ext) goto done;
    PyObject *body = PyBytes_FromStringAndSize(data + 4 + header_len, size - 4 - header_len);
    if (!body) goto done;
    PyObject *code = PyLong_FromLong(ints[0]), *version = PyLong_FromLong(ints[3]),
             *opaque = PyLong_FromLong(ints[2]), *flag = PyLong_FromLong(ints[1]);
    if (code && version && opaque && flag) {
        PyObject *args = PyTuple_Pack(9, code, language, version, opaque, flag,
                                      remark ? remark : Py_None, ext, body, json_type);
        if (args) {
            result = PyObject_Call(command_cls, args, NULL);
            Py_DECREF(args);
        }
    }
    Py_XDECREF(code);
    Py_XDECREF(version);
    Py_XDECREF(opaque);
    Py_XDECREF(flag);
    Py_DECREF(body);
    Py_XDECREF(language);
    Py_XDECREF(remark);
    Py_XDECREF(ext);
    return result; /* NULL with the error set: a real failure, not a deferral */
done:
    Py_XDECREF(language);
    Py_XDECREF(remark);
    Py_XDECREF(ext);
    if (PyErr_Occurred()) PyErr_Clear();
    Py_RETURN_NONE;
}

/* -- encode ------------------------------------------------------------------------------ */

/* Bytes ``s`` take once escaped as encode_basestring escapes them. */
static Py_ssize_t escaped_len(const char *s, Py_ssize_t n) {
    Py_ssize_t out = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' ||
            ch == '\t')
            out += 1;
        else if (ch < 0x20)
            out += 5;
    }
    return out;
}

static char *write_escaped(char *w, const char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char short_form = ch == '"' ? '"' : ch == '\\' ? '\\' : ch == '\b' ? 'b' : ch == '\f' ? 'f'
                        : ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch == '\t' ? 't' : 0;
        if (short_form) {
            *w++ = '\\';
            *w++ = short_form;
        } else if (ch < 0x20) {
            memcpy(w, "\\u00", 4);
            w[4] = hex[ch >> 4];
            w[5] = hex[ch & 15];
            w += 6;
        } else {
            *w++ = (char)ch;
        }
    }
    return w;
}

#define MAX_VALUES 16
#define PROPERTY_MARK_LEN 6 /* \u0001 or \u0002, escaped */

typedef struct {
    const char *text; /* UTF-8 (str), decimal (int); NULL for a dict */
    Py_ssize_t len;
    char digits[24];
} rendered;

/* The properties' escaped length, or -1 to defer (not every name and value a str, an empty
 * name, a separator inside, a str that cannot be UTF-8). */
static Py_ssize_t properties_len(PyObject *props) {
    Py_ssize_t pos = 0, total = 0;
    PyObject *k, *v;
    while (PyDict_Next(props, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k) || !PyUnicode_CheckExact(v)) return -1;
        Py_ssize_t kn, vn;
        const char *ks = PyUnicode_AsUTF8AndSize(k, &kn);
        const char *vs = ks ? PyUnicode_AsUTF8AndSize(v, &vn) : NULL;
        if (!vs) {
            PyErr_Clear();
            return -1;
        }
        if (kn == 0 || memchr(ks, 1, kn) || memchr(ks, 2, kn) || memchr(vs, 1, vn) ||
            memchr(vs, 2, vn))
            return -1;
        total += escaped_len(ks, kn) + escaped_len(vs, vn) + 2 * PROPERTY_MARK_LEN;
    }
    return total;
}

static char *write_properties(char *w, PyObject *props) {
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(props, &pos, &k, &v)) {
        Py_ssize_t kn, vn;
        const char *ks = PyUnicode_AsUTF8AndSize(k, &kn); /* cached by properties_len */
        const char *vs = PyUnicode_AsUTF8AndSize(v, &vn);
        w = write_escaped(w, ks, kn);
        memcpy(w, "\\u0001", PROPERTY_MARK_LEN);
        w = write_escaped(w + PROPERTY_MARK_LEN, vs, vn);
        memcpy(w, "\\u0002", PROPERTY_MARK_LEN);
        w += PROPERTY_MARK_LEN;
    }
    return w;
}

static PyObject *fill_frame(PyObject *self, PyObject *args) {
    PyObject *pieces, *values, *body;
    long long opaque;
    if (!PyArg_ParseTuple(args, "O!O!LS", &PyTuple_Type, &pieces, &PyTuple_Type, &values,
                          &opaque, &body))
        return NULL;
    Py_ssize_t nv = PyTuple_Size(values);
    if (nv > MAX_VALUES || PyTuple_Size(pieces) != nv + 2) {
        PyErr_SetString(PyExc_ValueError, "fill_frame: pieces must be one more than the "
                                          "values and the opaque (at most 16 values)");
        return NULL;
    }
    rendered r[MAX_VALUES];
    Py_ssize_t header = 0;
    char opaque_text[24];
    Py_ssize_t opaque_len = snprintf(opaque_text, sizeof opaque_text, "%lld", opaque);
    for (Py_ssize_t i = 0; i < nv + 2; i++) {
        PyObject *piece = PyTuple_GetItem(pieces, i);
        if (!PyBytes_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "fill_frame: pieces must be bytes");
            return NULL;
        }
        header += PyBytes_Size(piece);
    }
    for (Py_ssize_t i = 0; i < nv; i++) {
        PyObject *v = PyTuple_GetItem(values, i);
        r[i].text = NULL;
        if (PyUnicode_CheckExact(v)) {
            if (!(r[i].text = PyUnicode_AsUTF8AndSize(v, &r[i].len))) goto defer;
            header += escaped_len(r[i].text, r[i].len);
        } else if (PyLong_CheckExact(v)) {
            int overflow;
            long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || (n == -1 && PyErr_Occurred())) goto defer;
            r[i].len = snprintf(r[i].digits, sizeof r[i].digits, "%lld", n);
            r[i].text = r[i].digits;
            header += r[i].len;
        } else if (PyDict_CheckExact(v)) {
            if ((r[i].len = properties_len(v)) < 0) goto defer;
            header += r[i].len;
        } else {
            goto defer;
        }
    }
    header += opaque_len;
    Py_ssize_t body_len = PyBytes_Size(body);
    if (header > 0xFFFFFF || 4 + header + body_len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "fill_frame: frame too large");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, 8 + header + body_len);
    if (!out) return NULL;
    char *w = PyBytes_AsString(out);
    uint32_t length = (uint32_t)(4 + header + body_len), word = (uint32_t)header;
    unsigned char prefix[8] = {
        (unsigned char)(length >> 24), (unsigned char)(length >> 16),
        (unsigned char)(length >> 8), (unsigned char)length, (unsigned char)(word >> 24),
        (unsigned char)(word >> 16), (unsigned char)(word >> 8), (unsigned char)word};
    memcpy(w, prefix, 8);
    w += 8;
    for (Py_ssize_t i = 0; i <= nv; i++) {
        PyObject *piece = PyTuple_GetItem(pieces, i);
        memcpy(w, PyBytes_AsString(piece), PyBytes_Size(piece));
        w += PyBytes_Size(piece);
        if (i == nv) {
            memcpy(w, opaque_text, opaque_len);
            w += opaque_len;
        } else if (r[i].text == NULL) {
            w = write_properties(w, PyTuple_GetItem(values, i));
        } else if (r[i].text == r[i].digits) {
            memcpy(w, r[i].text, r[i].len);
            w += r[i].len;
        } else {
            w = write_escaped(w, r[i].text, r[i].len);
        }
    }
    PyObject *last = PyTuple_GetItem(pieces, nv + 1);
    memcpy(w, PyBytes_AsString(last), PyBytes_Size(last));
    w += PyBytes_Size(last);
    memcpy(w, PyBytes_AsString(body), body_len);
    return out;
defer:
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyObject *bind(PyObject *self, PyObject *args) {
    PyObject *cls, *json;
    if (!PyArg_ParseTuple(args, "OO", &cls, &json)) return NULL;
    Py_XDECREF(command_cls);
    Py_XDECREF(json_type);
    command_cls = Py_NewRef(cls);
    json_type = Py_NewRef(json);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(RemotingCommand, SerializeType.JSON): what decode_json_frame builds."},
    {"decode_json_frame", decode_json_frame, METH_O,
     "decode_json_frame(frame) -> RemotingCommand, or None for the reference decoder."},
    {"fill_frame", fill_frame, METH_VARARGS,
     "fill_frame(pieces, values, opaque, body) -> frame bytes, or None for the Python path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rmqstore.protocol._codec", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__codec(void) { return PyModule_Create(&module_def); }
