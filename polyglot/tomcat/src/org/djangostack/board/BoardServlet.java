package org.djangostack.board;

import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.UUID;
import javax.naming.InitialContext;
import javax.naming.NamingException;
import javax.sql.DataSource;

/**
 * The message board of the Django app, on Tomcat: the same board_message table, the same
 * JSON shapes, the same Idempotency-Key rules (Board.java). Routes, below /java:
 * GET / (page), GET and POST /api/messages (JSON), POST /messages (the page's form),
 * GET /healthz (readiness: the pool hands out a working connection).
 */
public class BoardServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private transient DataSource pool;
    private String servedBy;

    @Override
    public void init() throws ServletException {
        try {
            pool = (DataSource) new InitialContext().lookup("java:comp/env/jdbc/board");
            servedBy = InetAddress.getLocalHost().getHostName();
        } catch (NamingException | IOException e) {
            throw new ServletException(e);
        }
        warmUp();
    }

    /**
     * Runs before the connector opens its port (load-on-startup, bindOnInit="false"): the
     * JDBC driver loaded, a pooled connection open, the query paths run once. A restarted
     * container's first requests are then as fast as any, not the cold JVM's.
     */
    private void warmUp() {
        try (Connection db = pool.getConnection();
             PreparedStatement q = db.prepareStatement("SELECT " + Board.AGGREGATE
                 + " FROM (SELECT * FROM board_message ORDER BY id DESC LIMIT 20) m")) {
            q.executeQuery().close();
        } catch (SQLException e) {
            log("warm-up: no database yet (" + e.getMessage() + "); the first requests will connect");
        }
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        resp.setHeader("X-Served-By", servedBy);  // as Django's: which container answered
        String requestId = req.getHeader("X-Request-ID");
        Board.REQUEST_ID.set(requestId == null ? "" : requestId);
        String path = req.getServletPath();
        String method = req.getMethod();
        boolean read = method.equals("GET") || method.equals("HEAD");
        try {
            if (path.equals("/") && read) {
                page(resp);
            } else if (path.equals("/api/messages") && read) {
                list(req, resp);
            } else if (path.equals("/api/messages") && method.equals("POST")) {
                createFromJson(req, resp);
            } else if (path.equals("/messages") && method.equals("POST")) {
                createFromForm(req, resp);
            } else if (path.equals("/healthz") && read) {
                ready(resp);
            } else if (path.equals("/") || path.equals("/api/messages") || path.equals("/messages")
                    || path.equals("/healthz")) {
                Board.problem(resp, 405, "method_not_allowed", "method not allowed on this route");
            } else {
                Board.problem(resp, 404, "not_found", "no such route");
            }
        } catch (SQLException e) {
            log("database error on " + method + " " + path + ": " + e.getMessage());
            resp.reset();
            resp.setHeader("X-Served-By", servedBy);
            resp.setHeader("Retry-After", "1");
            Board.problem(resp, 503, "service_unavailable", "the database is not available");
        }
    }

    private void page(HttpServletResponse resp) throws SQLException, IOException {
        StringBuilder rows = new StringBuilder();
        try (Connection db = pool.getConnection();
             PreparedStatement q = db.prepareStatement(
                 "SELECT id, text, served_by, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS') FROM board_message"
                 + " ORDER BY id DESC LIMIT 20")) {
            try (ResultSet r = q.executeQuery()) {
                while (r.next()) {
                    rows.append("<li><span class=\"text\">").append(Board.html(r.getString(2)))
                        .append("</span> <small>#").append(r.getLong(1)).append(", ")
                        .append(Board.html(r.getString(4))).append(" UTC, via ")
                        .append(Board.html(r.getString(3))).append("</small></li>\n");
                }
            }
        }
        Board.send(resp, 200, "text/html; charset=utf-8", "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            + "<title>Message board (Java)</title>"
            + "<link rel=\"stylesheet\" href=\"/java/static/board.css\"></head>\n<body><main>"
            + "<h1>Message board</h1><p class=\"server\">Rendered by Tomcat (Java servlet) in container "
            + Board.html(servedBy) + ". The same board: <a href=\"/\">Django</a>, <a href=\"/php/\">PHP</a>.</p>\n"
            + "<form method=\"post\" action=\"/java/messages\">"
            + "<input type=\"hidden\" name=\"key\" value=\"" + UUID.randomUUID() + "\">"
            + "<input name=\"text\" maxlength=\"" + Board.MAX_TEXT + "\" required autocomplete=\"off\">"
            + "<button>Post</button></form>\n<ul class=\"messages\">\n" + rows + "</ul></main></body></html>\n");
    }

    private void list(HttpServletRequest req, HttpServletResponse resp) throws SQLException, IOException {
        Long after = Board.longParam(req.getParameter("after"));
        Long limitParam = Board.longParam(req.getParameter("limit"));
        long limit = Math.max(1, Math.min(limitParam == null ? Board.PAGE_SIZE : limitParam, 500));
        String sql = after == null
            ? "SELECT " + Board.AGGREGATE + " FROM (SELECT * FROM board_message ORDER BY id DESC LIMIT ?) m"
            : "SELECT " + Board.AGGREGATE_ASC + " FROM (SELECT * FROM board_message WHERE id > ? ORDER BY id LIMIT ?) m";
        try (Connection db = pool.getConnection(); PreparedStatement q = db.prepareStatement(sql)) {
            if (after == null) {
                q.setLong(1, limit);
            } else {
                q.setLong(1, after);
                q.setLong(2, limit);
            }
            try (ResultSet r = q.executeQuery()) {
                r.next();
                Board.json(resp, 200, "{\"messages\": " + r.getString(1) + "}");
            }
        }
    }

    private void createFromJson(HttpServletRequest req, HttpServletResponse resp) throws SQLException, IOException {
        String type = req.getContentType() == null ? "" : req.getContentType().split(";")[0].trim();
        if (!type.equals("application/json")) {
            Board.problem(resp, 400, "unsupported_content_type", "send the message as application/json");
            return;
        }
        byte[] body = req.getInputStream().readAllBytes();
        try (Connection db = pool.getConnection()) {
            Board.Parsed parsed = Board.parseJson(db, new String(body, StandardCharsets.UTF_8));
            if (parsed.error != null) {
                Board.problem(resp, 400, parsed.error, parsed.reason);
                return;
            }
            Board.Result result = Board.create(db, parsed.text, servedBy, req.getHeader("Idempotency-Key"),
                "POST " + req.getRequestURI(), Board.sha256(body));
            if (result.replayed) {
                resp.setHeader("Idempotent-Replayed", "true");
            }
            if (result.status == 409) {
                resp.setHeader("Retry-After", "1");
            }
            Board.send(resp, result.status, result.contentType, result.body);
        }
    }

    private void createFromForm(HttpServletRequest req, HttpServletResponse resp) throws SQLException, IOException {
        // A cross-site form may not post here: browsers send Origin with every POST.
        String origin = req.getHeader("Origin");
        if (origin != null && !origin.endsWith("://" + req.getHeader("Host"))) {
            Board.problem(resp, 403, "cross_origin", "cross-site form posts are refused");
            return;
        }
        req.setCharacterEncoding("UTF-8");
        String text = Board.cleanText(req.getParameter("text"));
        if (text == null) {
            Board.problem(resp, 400, "invalid_text", "text must be a non-empty string of at most 500 characters");
            return;
        }
        // The page's form carries a fresh key: a double submit writes once.
        String key = req.getParameter("key");
        try (Connection db = pool.getConnection()) {
            Board.Result result = Board.create(db, text, servedBy, key, "POST " + req.getRequestURI(),
                Board.sha256(text.getBytes(StandardCharsets.UTF_8)));
            if (result.status >= 400) {
                Board.send(resp, result.status, result.contentType, result.body);
                return;
            }
        }
        resp.setStatus(303);
        resp.setHeader("Location", "/java/");
    }

    private void ready(HttpServletResponse resp) throws SQLException, IOException {
        try (Connection db = pool.getConnection(); PreparedStatement q = db.prepareStatement("SELECT 1")) {
            q.executeQuery().close();
        }
        Board.json(resp, 200, "{\"status\": \"ready\"}");
    }
}
