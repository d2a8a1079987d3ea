/* The write path's two per-line loops in C: normalising Records into rows, and encoding rows
 * as PostgreSQL binary COPY.
 *
 * Why C: on 2 cores the ingest process's Python is the bottleneck of every receiver
 * (docs/ingest-performance.md), and these two loops were ~2.3 us of its ~4-7 us per line.
 *
 * The semantics live in Python (ingest/normalize.py, ingest/store/copy.py, ingest/levels.py);
 * this file implements only the common case and hands every other record back to Python
 * (`slow_row`), so there is one definition of what a row is. tests/ingest/test_native.py
 * checks both implementations give identical rows and bytes for generated input.
 *
 * Records are read through the slot offsets of Record's member descriptors (set once by
 * configure()), and only for objects whose type is exactly Record.
 */
#include "record_slots.h"
#include "rowcodec.h"
#include <stdint.h>
#include <string.h>

enum {
    F_LINE, F_TS_NS, F_RECEIVED_NS, F_TENANT, F_SERVICE, F_CONTAINER_ID, F_CONTAINER_NAME,
    F_IMAGE, F_STREAM, F_LEVEL, F_ATTRS, F_DRIVER_ID, F_COUNT
};
static const char *FIELD_NAMES[F_COUNT] = {
    "line", "ts_ns", "received_ns", "tenant", "service", "container_id", "container_name",
    "image", "stream", "level", "attrs", "driver_id",
};
static Py_ssize_t offsets[F_COUNT];
static PyObject *small_ints[8];

#define FIELD(obj, f) SLOT(obj, offsets[f])

int
rowcodec_bind(PyTypeObject *type)
{
    for (int f = 0; f < F_COUNT; f++)
        if ((offsets[f] = record_slot(type, FIELD_NAMES[f])) < 0)
            return -1;
    for (int i = 0; i < 8; i++)
        if (small_ints[i] == NULL && (small_ints[i] = PyLong_FromLong(i)) == NULL)
            return -1;
    return 0;
}

/* ---- level scan (ingest/levels.py:severity_from_line) ------------------------------------ */

#define SCAN_BYTES 120

typedef struct { const char *word; int len; int severity; } LevelWord;

/* Every alternative of _LEVEL_IN_LINE. At one position the words that can match share their
 * severity (warn/warning, err/error, crit/critical), so the alternation order does not matter. */
static const LevelWord LEVEL_WORDS[] = {
    {"trace", 5, 7}, {"debug", 5, 7}, {"info", 4, 6}, {"notice", 6, 5}, {"warning", 7, 4},
    {"warn", 4, 4}, {"error", 5, 3}, {"err", 3, 3}, {"critical", 8, 2}, {"crit", 4, 2},
    {"fatal", 5, 2}, {"panic", 5, 0}, {"alert", 5, 1}, {"emerg", 5, 0},
};

static inline int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }

/* The severity of the first level word in the line's first 120 bytes (ASCII-lowered), with no
 * letter directly before or after it; -1 when there is none. */
static int
severity_scan(const char *data, Py_ssize_t size)
{
    unsigned char head[SCAN_BYTES];
    Py_ssize_t n = size < SCAN_BYTES ? size : SCAN_BYTES;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        head[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    for (Py_ssize_t p = 0; p < n; p++) {
        unsigned char c = head[p];
        if (c != 't' && c != 'd' && c != 'i' && c != 'n' && c != 'w' && c != 'e' && c != 'c'
            && c != 'f' && c != 'p' && c != 'a')
            continue;
        if (p > 0 && is_lower(head[p - 1]))
            continue;
        for (size_t w = 0; w < sizeof(LEVEL_WORDS) / sizeof(LEVEL_WORDS[0]); w++) {
            const LevelWord *lw = &LEVEL_WORDS[w];
            Py_ssize_t end = p + lw->len;
            if (end > n || memcmp(head + p, lw->word, (size_t)lw->len) != 0)
                continue;
            if (end < n && is_lower(head[end]))
                continue;
            return lw->severity;
        }
    }
    return -1;
}

PyObject *
py_severity_from_line(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "severity_from_line() takes bytes");
        return NULL;
    }
    int s = severity_scan(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
    if (s < 0)
        Py_RETURN_NONE;
    return Py_NewRef(small_ints[s]);
}

/* ---- normalize_into ---------------------------------------------------------------------- */

/* True when the bytes are ASCII without NUL: the lines stored exactly as received. */
static int
clean_ascii(const char *data, Py_ssize_t size)
{
    const unsigned char *p = (const unsigned char *)data;
    Py_ssize_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        /* a high bit, or a zero byte (the classic has-zero-byte test) */
        if ((v & 0x8080808080808080ULL) || ((v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL))
            return 0;
    }
    for (; i < size; i++)
        if (p[i] == 0 || p[i] >= 0x80)
            return 0;
    return 1;
}

/* The line as stored, a new reference; NULL without an exception when Python must decide. */
static PyObject *
fast_line(PyObject *line, Py_ssize_t max_bytes)
{
    if (PyBytes_CheckExact(line)) {
        Py_ssize_t size = PyBytes_GET_SIZE(line);
        if (size <= max_bytes && clean_ascii(PyBytes_AS_STRING(line), size))
            return Py_NewRef(line);
        return NULL;
    }
    if (PyUnicode_CheckExact(line) && PyUnicode_IS_COMPACT_ASCII(line)) {
        Py_ssize_t size = PyUnicode_GET_LENGTH(line);
        const char *data = (const char *)PyUnicode_DATA(line);
        if (size <= max_bytes && memchr(data, 0, (size_t)size) == NULL)
            return PyBytes_FromStringAndSize(data, size);
    }
    return NULL;
}

/* An exact int's value in [lo, hi], or 0 with *ok = 0 (not an exact int, or outside). */
static long long
int_in(PyObject *value, long long lo, long long hi, int *ok)
{
    *ok = 0;
    if (!PyLong_CheckExact(value))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    if (v < lo || v > hi)
        return 0;
    *ok = 1;
    return v;
}

/* Appends one row for `rec` to `rows`; 0 when done, 1 when Python must build it, -1 on error. */
static int
fast_row(PyObject *rec, PyObject *rows, PyObject *idx, Py_ssize_t max_bytes, long long oldest_ok,
         long long newest_ok, PyObject *now_ns, PyObject *stream_codes)
{
    if (FIELD(rec, F_ATTRS) != Py_None)
        return 1;
    PyObject *received = FIELD(rec, F_RECEIVED_NS);
    int ok;
    long long received_v = int_in(received, LLONG_MIN, LLONG_MAX, &ok);
    if (!ok)
        return 1;
    if (received_v == 0)
        received = now_ns;  /* `rec.received_ns or now_ns` */
    PyObject *ts = FIELD(rec, F_TS_NS);
    if (ts == Py_None) {
        ts = received;
    } else {
        int_in(ts, oldest_ok, newest_ok, &ok);
        if (!ok)
            return 1;  /* implausible (kept in attrs by Python) or not an int */
    }
    PyObject *level_obj = FIELD(rec, F_LEVEL);
    int level = -1;
    int level_given = level_obj != Py_None;
    if (level_given) {
        if (!PyLong_CheckExact(level_obj))
            return 1;
        long long v = int_in(level_obj, 0, 7, &ok);
        level = ok ? (int)v : -1;
    }
    PyObject *stream = PyDict_GetItemWithError(stream_codes, FIELD(rec, F_STREAM));
    if (stream == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        stream = small_ints[0];
    }
    PyObject *line = fast_line(FIELD(rec, F_LINE), max_bytes);
    if (line == NULL)
        return PyErr_Occurred() ? -1 : 1;
    if (!level_given) {
        level = severity_scan(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
    }
    PyObject *row = PyTuple_New(9);
    if (row == NULL) {
        Py_DECREF(line);
        return -1;
    }
    PyTuple_SET_ITEM(row, 0, Py_NewRef(idx));
    PyTuple_SET_ITEM(row, 1, Py_NewRef(ts));
    PyTuple_SET_ITEM(row, 2, Py_NewRef(received));
    PyTuple_SET_ITEM(row, 3, Py_NewRef(stream));
    PyTuple_SET_ITEM(row, 4, Py_NewRef(level < 0 ? Py_None : small_ints[level]));
    PyTuple_SET_ITEM(row, 5, Py_NewRef(small_ints[0]));
    PyTuple_SET_ITEM(row, 6, line);
    PyTuple_SET_ITEM(row, 7, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(row, 8, Py_NewRef(Py_None));
    int rc = PyList_Append(rows, row);
    Py_DECREF(row);
    return rc < 0 ? -1 : 0;
}

/* normalize_into(records, rows, meta_index, new_meta, slow_row, max_bytes, oldest_ok,
 *                newest_ok, now_ns, stream_codes)
 *
 * For each record: its container's meta index from `meta_index` (keyed as normalize_batch
 * keys it; `new_meta(rec)` makes and returns a missing one), then a row appended to `rows`:
 * built here in the common case, else by `slow_row(rec, idx)`, which appends it itself. */
PyObject *
normalize_into(PyObject *self, PyObject *args)
{
    PyObject *records, *rows, *meta_index, *new_meta, *slow_row, *now_ns, *stream_codes;
    Py_ssize_t max_bytes;
    long long oldest_ok, newest_ok;
    if (!PyArg_ParseTuple(args, "O!O!O!OOnLLO!O!", &PyList_Type, &records, &PyList_Type, &rows,
                          &PyDict_Type, &meta_index, &new_meta, &slow_row, &max_bytes, &oldest_ok,
                          &newest_ok, &PyLong_Type, &now_ns, &PyDict_Type, &stream_codes))
        return NULL;
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ingest.native.configure(Record) was not called");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(records);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *rec = PyList_GET_ITEM(records, i);
        Py_INCREF(rec);  /* a callback could shrink the list */
        int simple = Py_TYPE(rec) == record_type;
        if (simple) {
            for (int f = 0; f < F_COUNT; f++)
                if (FIELD(rec, f) == NULL) {  /* an unset slot: Python raises the error */
                    simple = 0;
                    break;
                }
        }
        PyObject *idx = NULL;
        int rc;
        if (simple) {
            PyObject *key = PyTuple_Pack(6, FIELD(rec, F_TENANT), FIELD(rec, F_CONTAINER_ID),
                                         FIELD(rec, F_CONTAINER_NAME), FIELD(rec, F_SERVICE),
                                         FIELD(rec, F_IMAGE), FIELD(rec, F_DRIVER_ID));
            if (key == NULL)
                goto error;
            idx = PyDict_GetItemWithError(meta_index, key);
            if (idx != NULL) {
                Py_INCREF(idx);
            } else if (!PyErr_Occurred()) {
                idx = PyObject_CallOneArg(new_meta, rec);
                if (idx != NULL && PyDict_SetItem(meta_index, key, idx) < 0)
                    Py_CLEAR(idx);
            }
            Py_DECREF(key);
            if (idx == NULL)
                goto error;
            rc = fast_row(rec, rows, idx, max_bytes, oldest_ok, newest_ok, now_ns, stream_codes);
        } else {
            rc = 1;
        }
        if (rc == 1) {
            PyObject *res = PyObject_CallFunctionObjArgs(slow_row, rec, idx ? idx : Py_None, NULL);
            Py_XDECREF(res);
            rc = res == NULL ? -1 : 0;
        }
        Py_XDECREF(idx);
        Py_DECREF(rec);
        if (rc < 0)
            return NULL;
        continue;
    error:
        Py_DECREF(rec);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- encode_rows (ingest/store/copy.py) --------------------------------------------------- */

static const char COPY_HEADER[19] = "PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
#define PG_EPOCH_US 946684800000000LL

static inline char *put16(char *p, int v) { p[0] = (char)(v >> 8); p[1] = (char)v; return p + 2; }
static inline char *put32(char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (char)(u >> 24); p[1] = (char)(u >> 16); p[2] = (char)(u >> 8); p[3] = (char)u;
    return p + 4;
}
static inline char *put64(char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) { p[i] = (char)u; u >>= 8; }
    return p + 8;
}
static inline long long floordiv(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int
as_ll(PyObject *v, long long *out, const char *what)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "row %s is not an int", what);
        return -1;
    }
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
small_code(PyObject *v, int allow_none, const char *what)
{
    if (allow_none && v == Py_None)
        return -1;
    long long x;
    if (as_ll(v, &x, what) < 0)
        return -2;
    if (x < 0 || x > 7) {
        PyErr_Format(PyExc_KeyError, "row %s %lld", what, x);
        return -2;
    }
    return (int)x;
}

static int
check_len(Py_ssize_t n)
{
    if (n > INT32_MAX - 1) {
        PyErr_SetString(PyExc_OverflowError, "a field over 2 GiB cannot be copied");
        return -1;
    }
    return 0;
}

/* encode_rows(rows, ckeys, first_id) -> bytes: the whole binary COPY payload. */
PyObject *
encode_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *ckeys;
    long long first_id;
    int field_count;
    if (!PyArg_ParseTuple(args, "O!O!Li", &PyList_Type, &rows, &PyList_Type, &ckeys, &first_id,
                          &field_count))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    /* pass 1: validate and size */
    Py_ssize_t total = sizeof(COPY_HEADER) + 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 9) {
            PyErr_SetString(PyExc_TypeError, "a row is not a 9-tuple");
            return NULL;
        }
        PyObject *line = PyTuple_GET_ITEM(row, 6), *attrs = PyTuple_GET_ITEM(row, 7);
        PyObject *raw = PyTuple_GET_ITEM(row, 8);
        if (!PyBytes_Check(line) || (raw != Py_None && !PyBytes_Check(raw))
            || (attrs != Py_None && !PyUnicode_Check(attrs))) {
            PyErr_SetString(PyExc_TypeError, "row line/raw must be bytes and attrs str or None");
            return NULL;
        }
        /* count, 6 fixed fields (len + value), level (NULL or a value), flags, 3 lengths */
        total += 2 + (4 + 8) * 4 + (4 + 2) * 2 + (PyTuple_GET_ITEM(row, 4) == Py_None ? 4 : 6) + 6 + 4
                 + PyBytes_GET_SIZE(line) + 4 + 4;
        if (check_len(PyBytes_GET_SIZE(line)) < 0)
            return NULL;
        if (attrs != Py_None) {
            Py_ssize_t alen;
            if (PyUnicode_AsUTF8AndSize(attrs, &alen) == NULL)
                return NULL;
            if (check_len(alen) < 0)
                return NULL;
            total += 1 + alen;
        }
        if (raw != Py_None) {
            if (check_len(PyBytes_GET_SIZE(raw)) < 0)
                return NULL;
            total += PyBytes_GET_SIZE(raw);
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, COPY_HEADER, sizeof(COPY_HEADER));
    p += sizeof(COPY_HEADER);
    Py_ssize_t nkeys = PyList_GET_SIZE(ckeys);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        long long idx, ts_ns, received_ns, stream, ckey;
        if (as_ll(PyTuple_GET_ITEM(row, 0), &idx, "meta index") < 0
            || as_ll(PyTuple_GET_ITEM(row, 1), &ts_ns, "ts_ns") < 0
            || as_ll(PyTuple_GET_ITEM(row, 2), &received_ns, "received_ns") < 0
            || as_ll(PyTuple_GET_ITEM(row, 3), &stream, "stream") < 0)
            goto error;
        if (idx < 0 || idx >= nkeys) {
            PyErr_SetString(PyExc_IndexError, "row meta index has no container key");
            goto error;
        }
        if (as_ll(PyList_GET_ITEM(ckeys, idx), &ckey, "ckey") < 0)
            goto error;
        int level = small_code(PyTuple_GET_ITEM(row, 4), 1, "level");
        int flags = small_code(PyTuple_GET_ITEM(row, 5), 0, "flags");
        if (level == -2 || flags == -2)
            goto error;
        if (stream < -32768 || stream > 32767) {
            PyErr_SetString(PyExc_OverflowError, "row stream out of range");
            goto error;
        }
        long long ts_us = floordiv(ts_ns, 1000);
        p = put16(p, field_count);
        p = put32(p, 8); p = put64(p, ckey);
        p = put32(p, 8); p = put64(p, first_id + i);
        p = put32(p, 8); p = put64(p, ts_us - PG_EPOCH_US);
        p = put32(p, 2); p = put16(p, (int)(ts_ns - ts_us * 1000));
        p = put32(p, 8); p = put64(p, floordiv(received_ns, 1000) - PG_EPOCH_US);
        p = put32(p, 2); p = put16(p, (int)stream);
        if (level < 0) {
            p = put32(p, -1);
        } else {
            p = put32(p, 2); p = put16(p, level);
        }
        p = put32(p, 2); p = put16(p, flags);
        PyObject *line = PyTuple_GET_ITEM(row, 6), *attrs = PyTuple_GET_ITEM(row, 7);
        PyObject *raw = PyTuple_GET_ITEM(row, 8);
        Py_ssize_t len = PyBytes_GET_SIZE(line);
        p = put32(p, (int32_t)len);
        memcpy(p, PyBytes_AS_STRING(line), (size_t)len);
        p += len;
        if (attrs == Py_None) {
            p = put32(p, -1);
        } else {
            Py_ssize_t alen;
            const char *data = PyUnicode_AsUTF8AndSize(attrs, &alen);
            p = put32(p, (int32_t)(alen + 1));
            *p++ = 1;  /* jsonb binary format version 1 */
            memcpy(p, data, (size_t)alen);
            p += alen;
        }
        if (raw == Py_None) {
            p = put32(p, -1);
        } else {
            len = PyBytes_GET_SIZE(raw);
            p = put32(p, (int32_t)len);
            memcpy(p, PyBytes_AS_STRING(raw), (size_t)len);
            p += len;
        }
    }
    p = put16(p, -1);
    if (p - PyBytes_AS_STRING(out) != total) {
        PyErr_SetString(PyExc_SystemError, "rowcodec: COPY payload size mismatch");
        goto error;
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

