<?php
// The message board of the Django app, on PHP-FPM: the same board_message table, the
// same JSON shapes, the same Idempotency-Key rules (app/board/idempotency.py). nginx
// sends every /php/ request here. Routes: GET /php/ (page), GET and POST
// /php/api/messages (JSON), POST /php/messages (the page's form), GET /php/healthz.
declare(strict_types=1);

const MAX_TEXT = 500;
const PAGE_SIZE = 50;
// Messages as JSON built by PostgreSQL: exactly Django's shape, and created_at as Python's
// datetime.isoformat() writes it (six digits of microseconds, none when they are zero;
// PostgreSQL's own JSON timestamps drop trailing zeros).
const ISO_CREATED_AT = <<<'SQL'
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_part('microseconds', created_at)::bigint % 1000000 = 0 THEN ''
    ELSE to_char(created_at AT TIME ZONE 'UTC', '.US') END || '+00:00'
    SQL;
const OBJECT = "json_build_object('id', id, 'text', text, 'created_at', " . ISO_CREATED_AT . ", 'served_by', served_by)";
// Django's lock id (idempotency.lock_id): the first 8 bytes of sha256(scope + ' ' + key), signed.
const LOCK = "SELECT pg_try_advisory_xact_lock(('x' || substr(encode(sha256(convert_to(?, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint)";

function db(): PDO
{
    // Persistent: each FPM worker keeps one connection (pm.max_children is the pool size).
    // The password comes from the Compose secret file, never the environment.
    return new PDO('pgsql:host=db;port=5432;dbname=app;connect_timeout=2;application_name=php', 'app',
        trim((string) file_get_contents('/run/secrets/db_password')), [
            PDO::ATTR_PERSISTENT => true,
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_NUM,
        ]);
}

function send(int $status, string $body, string $type = 'application/json', array $headers = []): void
{
    http_response_code($status);
    header("Content-Type: $type");
    foreach ($headers as $name => $value) {
        header("$name: $value");
    }
    echo $body;
}

/** The stack's one error shape (Django's board/errors.py, nginx's errors/): error, reason, request_id. */
function error_body(string $error, string $reason): string
{
    return json_encode(['error' => $error, 'reason' => $reason, 'request_id' => $_SERVER['HTTP_X_REQUEST_ID'] ?? '']);
}

function problem(int $status, string $error, string $reason): void
{
    $headers = $status === 409 || $status === 503 ? ['Retry-After' => '1'] : [];
    send($status, error_body($error, $reason), 'application/json', $headers);
}

function clean_text($value): ?string
{
    // iconv_strlen counts characters (as Django and PostgreSQL do) and fails on invalid UTF-8.
    if (!is_string($value) || trim($value) === '' || !is_int($n = @iconv_strlen($value, 'UTF-8')) || $n > MAX_TEXT) {
        return null;
    }
    return trim($value);
}

function int_param(string $name): ?int
{
    $value = $_GET[$name] ?? null;
    return is_string($value) && preg_match('/^-?\d{1,18}$/', $value) ? (int) $value : null;
}

/** [status, body, content type, replayed] */
function create(PDO $db, string $text, ?string $key, string $scope, string $fingerprint): array
{
    $db->beginTransaction();
    try {
        if ($key !== null) {
            $key = trim(trim($key), '"');
            if ($key === '' || strlen($key) > 255) {
                $db->rollBack();
                return [400, error_body('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 characters'), 'application/json', false];
            }
            $lock = $db->prepare(LOCK);
            $lock->execute(["$scope $key"]);
            if (!$lock->fetchColumn()) {
                $db->rollBack();
                return [409, error_body('request_in_progress', 'a request with this Idempotency-Key is still being processed; retry shortly'),
                    'application/json', false];
            }
            $db->prepare("DELETE FROM board_idempotencyrecord WHERE key = ? AND scope = ?"
                . " AND created_at < now() - interval '24 hours'")->execute([$key, $scope]);
            $find = $db->prepare('SELECT fingerprint, status, body, content_type FROM board_idempotencyrecord'
                . ' WHERE key = ? AND scope = ?');
            $find->execute([$key, $scope]);
            $stored = $find->fetch();
            if ($stored) {
                $db->rollBack();
                if ($stored[0] !== $fingerprint) {
                    return [422, error_body('idempotency_key_reused', 'this Idempotency-Key was used with a different request payload'),
                        'application/json', false];
                }
                return [(int) $stored[1], $stored[2], $stored[3], true];
            }
        }
        $insert = $db->prepare('INSERT INTO board_message (text, created_at, served_by) VALUES (?, now(), ?)'
            . ' RETURNING ' . OBJECT . '::text');
        $insert->execute([$text, gethostname()]);
        $body = $insert->fetchColumn();
        if ($key !== null) {
            $db->prepare('INSERT INTO board_idempotencyrecord (key, scope, fingerprint, status, body, content_type,'
                . ' created_at) VALUES (?, ?, ?, 201, ?, ?, now())')
                ->execute([$key, $scope, $fingerprint, $body, 'application/json']);
        }
        $db->commit();
        return [201, $body, 'application/json', false];
    } catch (Throwable $e) {
        if ($db->inTransaction()) {
            $db->rollBack();
        }
        throw $e;
    }
}

function page(PDO $db): void
{
    $host = htmlspecialchars(gethostname());
    $rows = '';
    $list = $db->query("SELECT id, text, served_by, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS')"
        . ' FROM board_message ORDER BY id DESC LIMIT 20');
    foreach ($list as [$id, $text, $by, $at]) {
        $rows .= sprintf("<li><span class=\"text\">%s</span> <small>#%d, %s UTC, via %s</small></li>\n",
            htmlspecialchars($text), $id, htmlspecialchars($at), htmlspecialchars($by));
    }
    $key = bin2hex(random_bytes(16));
    $max = MAX_TEXT;
    send(200, <<<HTML
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Message board (PHP)</title>
        <link rel="stylesheet" href="/php/static/board.css"></head>
        <body><main><h1>Message board</h1>
        <p class="server">Rendered by PHP-FPM in container $host. The same board: <a href="/">Django</a>, <a href="/java/">Java</a>.</p>
        <form method="post" action="/php/messages"><input type="hidden" name="key" value="$key">
        <input name="text" maxlength="$max" required autocomplete="off"><button>Post</button></form>
        <ul class="messages">
        $rows</ul></main></body></html>

        HTML, 'text/html; charset=utf-8');
}

function list_messages(PDO $db): void
{
    $after = int_param('after');
    $limit = max(1, min(int_param('limit') ?? PAGE_SIZE, 500));
    if ($after === null) {
        $q = $db->prepare("SELECT coalesce(json_agg(" . OBJECT . " ORDER BY id DESC), '[]')::text"
            . ' FROM (SELECT * FROM board_message ORDER BY id DESC LIMIT ?) m');
        $q->execute([$limit]);
    } else {
        $q = $db->prepare("SELECT coalesce(json_agg(" . OBJECT . " ORDER BY id), '[]')::text"
            . ' FROM (SELECT * FROM board_message WHERE id > ? ORDER BY id LIMIT ?) m');
        $q->execute([$after, $limit]);
    }
    send(200, '{"messages": ' . $q->fetchColumn() . '}');
}

function create_from_json(string $scope): void
{
    $type = strtolower(trim(explode(';', $_SERVER['CONTENT_TYPE'] ?? '')[0]));
    if ($type !== 'application/json') {
        problem(400, 'unsupported_content_type', 'send the message as application/json');
        return;
    }
    $raw = (string) file_get_contents('php://input');
    $body = json_decode($raw, true);
    if (json_last_error() !== JSON_ERROR_NONE) {
        problem(400, 'invalid_json', 'the request body is not valid JSON');
        return;
    }
    if (!is_array($body) || array_is_list($body) && !str_starts_with(ltrim($raw), '{')) {
        problem(400, 'invalid_body', 'send an object: {"text": "..."}');
        return;
    }
    $text = clean_text($body['text'] ?? null);
    if ($text === null) {
        problem(400, 'invalid_text', 'text must be a non-empty string of at most 500 characters');
        return;
    }
    [$status, $out, $type, $replayed] = create(db(), $text, $_SERVER['HTTP_IDEMPOTENCY_KEY'] ?? null, $scope,
        hash('sha256', $raw));
    $headers = $replayed ? ['Idempotent-Replayed' => 'true'] : [];
    if ($status === 409) {
        $headers['Retry-After'] = '1';
    }
    send($status, $out, $type, $headers);
}

function create_from_form(string $scope): void
{
    // A cross-site form may not post here: browsers send Origin with every POST.
    $origin = $_SERVER['HTTP_ORIGIN'] ?? null;
    if ($origin !== null && !str_ends_with($origin, '://' . ($_SERVER['HTTP_HOST'] ?? ''))) {
        problem(403, 'cross_origin', 'cross-site form posts are refused');
        return;
    }
    $text = clean_text($_POST['text'] ?? null);
    if ($text === null) {
        problem(400, 'invalid_text', 'text must be a non-empty string of at most 500 characters');
        return;
    }
    // The page's form carries a fresh key: a double submit writes once.
    $key = is_string($_POST['key'] ?? null) ? $_POST['key'] : null;
    [$status, $out, $type] = create(db(), $text, $key, $scope, hash('sha256', $text));
    if ($status >= 400) {
        send($status, $out, $type);
        return;
    }
    send(303, '', 'text/plain', ['Location' => '/php/']);
}

header('X-Served-By: ' . gethostname());  // as Django's: which container answered
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$read = $method === 'GET' || $method === 'HEAD';
try {
    match (true) {
        $path === '/php/' && $read => page(db()),
        $path === '/php/api/messages' && $read => list_messages(db()),
        $path === '/php/api/messages' && $method === 'POST' => create_from_json("POST $path"),
        $path === '/php/messages' && $method === 'POST' => create_from_form("POST $path"),
        $path === '/php/healthz' && $read => send(200, db()->query('SELECT 1') ? '{"status": "ready"}' : ''),
        in_array($path, ['/php/', '/php/api/messages', '/php/messages', '/php/healthz'], true)
            => problem(405, 'method_not_allowed', 'method not allowed on this route'),
        default => problem(404, 'not_found', 'no such route'),
    };
} catch (PDOException $e) {
    error_log("database error on $method $path: " . $e->getMessage());
    header_remove('Idempotent-Replayed');
    problem(503, 'service_unavailable', 'the database is not available');
}
