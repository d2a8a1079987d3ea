/* RFC 6587 octet-counted syslog frames (`<length> <message>`, Docker's framing for its
 * rfc5424 formats): the well-formed run at the start of a buffer, split in C.
 *
 * ingest/receivers/syslog.py's StreamFramer stays the definition: this takes only what its
 * loop would take without a decision (stray CR/LF/NUL between frames, a digit run of at most 10
 * digits and a space, a length within the cap and wholly in the buffer) and returns where it
 * stopped, and the Python loop goes on from there with everything else (newline framing,
 * partial, malformed or oversize frames). */
#include "syslog_framing.h"
#include <string.h>

PyObject *
octet_frames(PyObject *self, PyObject *args)
{
    PyObject *buf, *frames;
    Py_ssize_t pos, max_message;
    if (!PyArg_ParseTuple(args, "O!nnO!", &PyByteArray_Type, &buf, &pos, &max_message, &PyList_Type, &frames))
        return NULL;
    const char *d = PyByteArray_AS_STRING(buf);
    Py_ssize_t size = PyByteArray_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    while (pos < size) {
        unsigned char first = (unsigned char)d[pos];
        if (first == '\r' || first == '\n' || first == 0) {
            pos++;
            continue;
        }
        if (first < '0' || first > '9')
            break;
        /* StreamFramer: the space must come within the next 11 bytes, after digits only */
        Py_ssize_t limit = pos + 11 < size ? pos + 11 : size, space = pos;
        long long length = 0;
        while (space < limit && d[space] >= '0' && d[space] <= '9') {
            length = length * 10 + (d[space] - '0');
            space++;
        }
        if (space >= limit || d[space] != ' ')
            break;
        if (length > max_message || size - (space + 1) < length)
            break;
        PyObject *frame = PyBytes_FromStringAndSize(d + space + 1, (Py_ssize_t)length);
        if (frame == NULL)
            return NULL;
        int rc = PyList_Append(frames, frame);
        Py_DECREF(frame);
        if (rc < 0)
            return NULL;
        d = PyByteArray_AS_STRING(buf);  /* nothing resizes it, but never trust a stale pointer */
        size = PyByteArray_GET_SIZE(buf);
        pos = space + 1 + (Py_ssize_t)length;
    }
    return PyLong_FromSsize_t(pos);
}
