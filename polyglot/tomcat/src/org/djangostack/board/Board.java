package org.djangostack.board;

import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HexFormat;

/**
 * The board's rules, as in app/board (views.py, idempotency.py). JSON is parsed and built by
 * PostgreSQL (json_build_object, json_agg, ::json), so the servlet needs no JSON library and
 * its messages have exactly the shape and timestamp format of Django's.
 */
final class Board {
    static final int MAX_TEXT = 500;
    static final int PAGE_SIZE = 50;
    // created_at as Python's datetime.isoformat() writes it (Django's as_dict): six digits of
    // microseconds, none when they are zero. PostgreSQL's own JSON timestamps drop trailing zeros.
    static final String ISO_CREATED_AT = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        + " || CASE WHEN date_part('microseconds', created_at)::bigint % 1000000 = 0 THEN ''"
        + " ELSE to_char(created_at AT TIME ZONE 'UTC', '.US') END || '+00:00'";
    private static final String OBJECT =
        "json_build_object('id', id, 'text', text, 'created_at', " + ISO_CREATED_AT + ", 'served_by', served_by)";
    static final String AGGREGATE = "coalesce(json_agg(" + OBJECT + " ORDER BY id DESC), '[]')::text";
    static final String AGGREGATE_ASC = "coalesce(json_agg(" + OBJECT + " ORDER BY id), '[]')::text";
    // Django's lock id (idempotency.lock_id): the first 8 bytes of sha256(scope + " " + key), signed.
    private static final String LOCK = "SELECT pg_try_advisory_xact_lock("
        + "('x' || substr(encode(sha256(convert_to(?, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint)";

    private Board() {
    }

    static final class Parsed {
        String text;
        String error;
        String reason;
    }

    static final class Result {
        int status;
        String body;
        String contentType = "application/json";
        boolean replayed;

        Result(int status, String body) {
            this.status = status;
            this.body = body;
        }
    }

    static String cleanText(String value) {
        if (value == null || value.strip().isEmpty() || value.codePointCount(0, value.length()) > MAX_TEXT) {
            return null;
        }
        return value.strip();
    }

    static Parsed parseJson(Connection db, String body) throws SQLException {
        Parsed parsed = new Parsed();
        try (PreparedStatement q = db.prepareStatement(
                "SELECT json_typeof(j), json_typeof(j -> 'text'), j ->> 'text' FROM (SELECT ?::json AS j) s")) {
            q.setString(1, body);
            try (ResultSet r = q.executeQuery()) {
                r.next();
                if (!"object".equals(r.getString(1))) {
                    parsed.error = "invalid_body";
                    parsed.reason = "send an object: {\\\"text\\\": \\\"...\\\"}";
                } else if (!"string".equals(r.getString(2)) || cleanText(r.getString(3)) == null) {
                    parsed.error = "invalid_text";
                    parsed.reason = "text must be a non-empty string of at most 500 characters";
                } else {
                    parsed.text = cleanText(r.getString(3));
                }
            }
        } catch (SQLException e) {
            if (!"22P02".equals(e.getSQLState())) {  // invalid_text_representation: not JSON
                throw e;
            }
            parsed.error = "invalid_json";
            parsed.reason = "the request body is not valid JSON";
        }
        return parsed;
    }

    /**
     * Writes the message. With a key, exactly as Django: the message and the stored response
     * commit in one transaction; the same key and payload again replays the stored response;
     * another payload gets 422; a request with the same key still running gets 409.
     */
    static Result create(Connection db, String text, String servedBy, String key, String scope, String fingerprint)
            throws SQLException {
        db.setAutoCommit(false);
        try {
            if (key != null) {
                key = key.strip();
                if (key.startsWith("\"") && key.endsWith("\"") && key.length() >= 2) {
                    key = key.substring(1, key.length() - 1);
                }
                if (key.isEmpty() || key.length() > 255) {
                    db.rollback();
                    return problemResult(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters");
                }
                try (PreparedStatement q = db.prepareStatement(LOCK)) {
                    q.setString(1, scope + " " + key);
                    try (ResultSet r = q.executeQuery()) {
                        r.next();
                        if (!r.getBoolean(1)) {
                            db.rollback();
                            return problemResult(409, "request_in_progress",
                                "a request with this Idempotency-Key is still being processed; retry shortly");
                        }
                    }
                }
                try (PreparedStatement q = db.prepareStatement("DELETE FROM board_idempotencyrecord"
                        + " WHERE key = ? AND scope = ? AND created_at < now() - interval '24 hours'")) {
                    q.setString(1, key);
                    q.setString(2, scope);
                    q.executeUpdate();
                }
                try (PreparedStatement q = db.prepareStatement("SELECT fingerprint, status, body, content_type"
                        + " FROM board_idempotencyrecord WHERE key = ? AND scope = ?")) {
                    q.setString(1, key);
                    q.setString(2, scope);
                    try (ResultSet r = q.executeQuery()) {
                        if (r.next()) {
                            Result stored;
                            if (!r.getString(1).equals(fingerprint)) {
                                stored = problemResult(422, "idempotency_key_reused",
                                    "this Idempotency-Key was used with a different request payload");
                            } else {
                                stored = new Result(r.getInt(2), r.getString(3));
                                stored.contentType = r.getString(4);
                                stored.replayed = true;
                            }
                            db.rollback();
                            return stored;
                        }
                    }
                }
            }
            Result created;
            try (PreparedStatement q = db.prepareStatement("INSERT INTO board_message (text, created_at, served_by)"
                    + " VALUES (?, now(), ?) RETURNING " + OBJECT + "::text")) {
                q.setString(1, text);
                q.setString(2, servedBy);
                try (ResultSet r = q.executeQuery()) {
                    r.next();
                    created = new Result(201, r.getString(1));
                }
            }
            if (key != null) {
                try (PreparedStatement q = db.prepareStatement("INSERT INTO board_idempotencyrecord"
                        + " (key, scope, fingerprint, status, body, content_type, created_at)"
                        + " VALUES (?, ?, ?, ?, ?, ?, now())")) {
                    q.setString(1, key);
                    q.setString(2, scope);
                    q.setString(3, fingerprint);
                    q.setInt(4, created.status);
                    q.setString(5, created.body);
                    q.setString(6, created.contentType);
                    q.executeUpdate();
                }
            }
            db.commit();
            return created;
        } catch (SQLException e) {
            db.rollback();
            throw e;
        } finally {
            db.setAutoCommit(true);
        }
    }

    /**
     * The request id nginx sent (X-Request-ID) for the request this thread serves: set by
     * BoardServlet.service, read by error bodies deep in the idempotency code without passing
     * it through every call (the pattern of SLF4J's MDC; a servlet request has one thread).
     */
    static final ThreadLocal<String> REQUEST_ID = ThreadLocal.withInitial(() -> "");

    /** The stack's one error shape (Django's board/errors.py, nginx's errors/): error, reason, request_id. */
    static Result problemResult(int status, String error, String reason) {
        return new Result(status, "{\"error\": \"" + error + "\", \"reason\": \"" + reason
                + "\", \"request_id\": \"" + REQUEST_ID.get() + "\"}");
    }

    /** error and reason are constants of this app, never user input; the request id is nginx's
     *  (its `map` admits only [A-Za-z0-9._-]): no escaping needed. */
    static void problem(HttpServletResponse resp, int status, String error, String reason) throws IOException {
        json(resp, status, problemResult(status, error, reason).body);
    }

    static void json(HttpServletResponse resp, int status, String body) throws IOException {
        send(resp, status, "application/json", body);
    }

    static void send(HttpServletResponse resp, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        resp.setStatus(status);
        resp.setContentType(contentType);
        resp.setContentLength(bytes.length);
        resp.getOutputStream().write(bytes);
    }

    static Long longParam(String value) {
        try {
            return value == null ? null : Long.valueOf(value);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The five characters that matter in HTML text and attribute values. */
    static String html(String value) {
        if (value == null) {
            return "";
        }
        StringBuilder out = new StringBuilder(value.length());
        for (char c : value.toCharArray()) {
            switch (c) {
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '&' -> out.append("&amp;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }
}
