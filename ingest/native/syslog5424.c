/* Docker's RFC 5424 syslog messages (`<PRI>1 TIME HOST TAG PROCID MSGID - MSG`, no structured
 * data) to Records: the hot case of ingest/receivers/syslog.py's SyslogReceiver._decode.
 *
 * It accepts exactly what _DOCKER_5424 matches and builds exactly the Record the Python loop
 * builds; everything else (another layout, a tag not of the template, a timestamp of another
 * shape or one Python refuses) goes to `general(frame)` in order, so the Python parser stays the
 * definition. tests/ingest/test_native.py compares both on generated frames.
 *
 * Frames are untrusted: every read is bounded by the frame's length.
 */
#include "syslog5424.h"
#include <string.h>

static inline int is_space(unsigned char c)
{
    /* Python's bytes \s: space, \t, \n, \r, \v, \f */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

typedef struct { const char *at; Py_ssize_t len; } Span;

/* A run of non-space bytes at *p, which must be followed by one space; 0 when there is none. */
static int
token(const char *d, Py_ssize_t size, Py_ssize_t *p, Span *out)
{
    Py_ssize_t start = *p, i = start;
    while (i < size && !is_space((unsigned char)d[i]))
        i++;
    if (i == start || i >= size || d[i] != ' ')
        return 0;
    out->at = d + start;
    out->len = i - start;
    *p = i + 1;
    return 1;
}

typedef struct {
    Span pri, stamp, host, app, message;
    int has_message;
} Parts;

/* _DOCKER_5424: <(\d{1,3})>1 (\S+) (\S+) (\S+) \S+ \S+ -(?: (.*))?\Z  (DOTALL) */
static int
split_5424(const char *d, Py_ssize_t size, Parts *m)
{
    Py_ssize_t p = 0;
    Span skip;
    if (size < 1 || d[0] != '<')
        return 0;
    p = 1;
    while (p < size && p <= 3 && is_digit((unsigned char)d[p]))
        p++;
    if (p == 1 || p >= size || d[p] != '>')
        return 0;
    m->pri.at = d + 1;
    m->pri.len = p - 1;
    p++;
    if (size - p < 2 || d[p] != '1' || d[p + 1] != ' ')
        return 0;
    p += 2;
    if (!token(d, size, &p, &m->stamp) || !token(d, size, &p, &m->host) || !token(d, size, &p, &m->app)
        || !token(d, size, &p, &skip) || !token(d, size, &p, &skip))
        return 0;
    if (p >= size || d[p] != '-')
        return 0;
    p++;
    if (p == size) {
        m->has_message = 0;
        return 1;
    }
    if (d[p] != ' ')
        return 0;
    m->has_message = 1;
    m->message.at = d + p + 1;
    m->message.len = size - p - 1;
    return 1;
}

/* The stamp's shape for the whole-second fast path (times.py _STAMP):
 * (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z
 * On a match, *frac_ns is the fraction in ns and zone/zone_len the zone. */
static int
stamp_shape(const char *s, Py_ssize_t n, long long *frac_ns, const char **zone, Py_ssize_t *zone_len)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
    if (n < 20)
        return 0;
    for (int i = 0; i < 19; i++) {
        if (pattern[i] == 'd' ? !is_digit((unsigned char)s[i]) : s[i] != pattern[i])
            return 0;
    }
    Py_ssize_t p = 19;
    long long frac = 0;
    int digits = 0;
    if (s[p] == '.') {
        p++;
        while (p < n && is_digit((unsigned char)s[p]) && digits < 10) {
            frac = frac * 10 + (s[p] - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return 0;
        for (int i = digits; i < 9; i++)
            frac *= 10;
    }
    if (n - p == 1 && s[p] == 'Z') {
        /* ok */
    } else if (n - p == 6 && (s[p] == '+' || s[p] == '-') && is_digit((unsigned char)s[p + 1])
               && is_digit((unsigned char)s[p + 2]) && s[p + 3] == ':' && is_digit((unsigned char)s[p + 4])
               && is_digit((unsigned char)s[p + 5])) {
        /* ok */
    } else {
        return 0;
    }
    *frac_ns = frac;
    *zone = s + p;
    *zone_len = n - p;
    return 1;
}

typedef struct {
    PyObject *whole_second_ns;  /* times._whole_second_ns(second, zone) */
    PyObject *stamp_ns;         /* times.rfc3339_bytes_to_ns(stamp) */
    PyObject *decode_error;     /* DecodeError: the stamp is refused, Python decides the frame */
    char second[32];            /* the last whole second + zone looked up, and its ns */
    Py_ssize_t second_len;
    PyObject *second_ns;
} Stamps;

/* The stamp's ns as a new reference; Py_None for "-"; NULL with no exception when Python must
 * decide the frame (a refused stamp); NULL with an exception on a real error. */
static PyObject *
stamp_value(Stamps *st, Span stamp)
{
    if (stamp.len == 1 && stamp.at[0] == '-')
        return Py_NewRef(Py_None);
    long long frac;
    const char *zone;
    Py_ssize_t zone_len;
    PyObject *whole = NULL;
    if (stamp_shape(stamp.at, stamp.len, &frac, &zone, &zone_len)) {
        Py_ssize_t key_len = 19 + zone_len;
        if (st->second_ns != NULL && st->second_len == key_len && memcmp(st->second, stamp.at, 19) == 0
            && memcmp(st->second + 19, zone, (size_t)zone_len) == 0) {
            whole = Py_NewRef(st->second_ns);
        } else {
            PyObject *second = PyBytes_FromStringAndSize(stamp.at, 19);
            PyObject *zone_obj = second ? PyBytes_FromStringAndSize(zone, zone_len) : NULL;
            if (zone_obj != NULL)
                whole = PyObject_CallFunctionObjArgs(st->whole_second_ns, second, zone_obj, NULL);
            Py_XDECREF(second);
            Py_XDECREF(zone_obj);
            if (whole != NULL && PyLong_Check(whole)) {
                memcpy(st->second, stamp.at, 19);
                memcpy(st->second + 19, zone, (size_t)zone_len);
                st->second_len = key_len;
                Py_XSETREF(st->second_ns, Py_NewRef(whole));
            }
        }
        if (whole != NULL && frac != 0) {
            PyObject *f = PyLong_FromLongLong(frac);
            PyObject *sum = f ? PyNumber_Add(whole, f) : NULL;
            Py_XDECREF(f);
            Py_SETREF(whole, sum);
        }
    } else {
        PyObject *bytes = PyBytes_FromStringAndSize(stamp.at, stamp.len);
        if (bytes != NULL)
            whole = PyObject_CallOneArg(st->stamp_ns, bytes);
        Py_XDECREF(bytes);
    }
    if (whole == NULL && PyErr_ExceptionMatches(st->decode_error))
        PyErr_Clear();
    return whole;
}

/* docker_5424(frames, received_ns, heads, add_head, general, out, whole_second_ns, stamp_ns,
 *             decode_error)
 *
 * For each frame, in order: a Record appended to `out`, or general(frame) called (which
 * appends it or counts it as malformed). heads[b"<pri> <host> <tag>"] (one dict per peer) holds
 * the Record's fields after (line, ts_ns, received_ns) for such messages, or None when Python
 * must parse them; add_head(key, pri, host, tag) makes a missing entry and returns it. */
PyObject *
docker_5424(PyObject *self, PyObject *args)
{
    PyObject *frames, *received_ns, *heads, *add_head, *general, *out;
    Stamps st = {0};
    if (!PyArg_ParseTuple(args, "O!O!O!OOO!OOO", &PyList_Type, &frames, &PyLong_Type, &received_ns,
                          &PyDict_Type, &heads, &add_head, &general, &PyList_Type, &out,
                          &st.whole_second_ns, &st.stamp_ns, &st.decode_error))
        return NULL;
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ingest.native.configure(Record) was not called");
        return NULL;
    }
    PyObject *values[RECORD_MAX_FIELDS];
    Py_ssize_t n = PyList_GET_SIZE(frames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *frame = Py_NewRef(PyList_GET_ITEM(frames, i));
        PyObject *record = NULL;
        int handled = 0;
        if (PyBytes_CheckExact(frame)) {
            const char *d = PyBytes_AS_STRING(frame);
            Py_ssize_t size = PyBytes_GET_SIZE(frame);
            if (size > 0 && d[size - 1] == '\n')
                size--;
            Parts m;
            if (split_5424(d, size, &m)) {
                /* pri, host and tag joined by spaces (none of them holds one): one allocation */
                Py_ssize_t klen = m.pri.len + 1 + m.host.len + 1 + m.app.len;
                PyObject *key = PyBytes_FromStringAndSize(NULL, klen);
                if (key == NULL)
                    goto error;
                char *k = PyBytes_AS_STRING(key);
                memcpy(k, m.pri.at, (size_t)m.pri.len);
                k[m.pri.len] = ' ';
                memcpy(k + m.pri.len + 1, m.host.at, (size_t)m.host.len);
                k[m.pri.len + 1 + m.host.len] = ' ';
                memcpy(k + m.pri.len + 2 + m.host.len, m.app.at, (size_t)m.app.len);
                PyObject *tail = PyDict_GetItemWithError(heads, key);  /* borrowed */
                if (tail != NULL) {
                    Py_INCREF(tail);
                } else if (!PyErr_Occurred()) {
                    tail = PyObject_CallFunction(add_head, "Oy#y#y#", key, m.pri.at, m.pri.len, m.host.at,
                                                 m.host.len, m.app.at, m.app.len);
                }
                Py_DECREF(key);
                if (tail == NULL)
                    goto error;
                if (PyTuple_Check(tail) && PyTuple_GET_SIZE(tail) == record_nfields - 3) {
                    PyObject *ts = stamp_value(&st, m.stamp);
                    if (ts == NULL && PyErr_Occurred()) {
                        Py_DECREF(tail);
                        goto error;
                    }
                    if (ts != NULL) {
                        const char *msg = m.has_message ? m.message.at : "";
                        Py_ssize_t len = m.has_message ? m.message.len : 0;
                        if (len >= 3 && memcmp(msg, "\xef\xbb\xbf", 3) == 0) {
                            msg += 3;
                            len -= 3;
                        }
                        PyObject *line = PyBytes_FromStringAndSize(msg, len);
                        if (line != NULL) {
                            values[0] = line;
                            values[1] = ts;
                            values[2] = received_ns;
                            for (int f = 0; f < record_nfields - 3; f++)
                                values[3 + f] = PyTuple_GET_ITEM(tail, f);
                            record = record_new(values);
                            Py_DECREF(line);
                        }
                        Py_DECREF(ts);
                        if (record == NULL) {
                            Py_DECREF(tail);
                            goto error;
                        }
                        handled = 1;
                    }
                }
                Py_DECREF(tail);
            }
        }
        if (handled) {
            int rc = PyList_Append(out, record);
            Py_DECREF(record);
            if (rc < 0)
                goto error;
        } else {
            PyObject *res = PyObject_CallOneArg(general, frame);
            if (res == NULL)
                goto error;
            Py_DECREF(res);
        }
        Py_DECREF(frame);
        continue;
    error:
        Py_DECREF(frame);
        Py_XDECREF(st.second_ns);
        return NULL;
    }
    Py_XDECREF(st.second_ns);
    Py_RETURN_NONE;
}
