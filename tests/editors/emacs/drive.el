;;; drive.el --- Emacs and eglot as a user drives them on `hotd lsp': batch Emacs, real daemon -*- lexical-binding: t -*-
;;
;; emacs --batch -l drive.el APP: opens APP (a module a `hotd run' process runs), connects eglot
;; to `$HOTD_BINARY lsp', then saves three edits as a user would (a body change, a rude edit, a
;; syntax error), each time waiting for what the editor itself shows: the server's log message of
;; the save (eglot drops `hotd/patched'), or flymake's diagnostics. Shuts the server down as eglot
;; does, and writes what it saw to $HOTD_EMACS_RESULT (JSON) and the *EGLOT events* to
;; $HOTD_EMACS_EVENTS. Exits 0 when every step saw what it waited for.

(require 'eglot)
(require 'json)

(defvar drive-steps nil "What each step saw, newest first.")
(defvar drive-timeout 30 "Seconds a step may wait.")

(defun drive-write-result (failure exit-status)
  (with-temp-file (getenv "HOTD_EMACS_RESULT")
    (insert (json-encode `((steps . ,(vconcat (reverse drive-steps)))
                           (failure . ,failure)
                           (exit_status . ,exit-status))))))

(defun drive-wait (what predicate)
  "Waits (running timers and process output) until PREDICATE is non-nil; signals WHAT otherwise."
  (let ((deadline (+ (float-time) drive-timeout)) value)
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (error "timed out waiting for %s" what))))

(defun drive-diagnostics ()
  (mapcar (lambda (diagnostic)
            `((line . ,(line-number-at-pos (flymake-diagnostic-beg diagnostic)))
              (text . ,(flymake-diagnostic-text diagnostic))))
          (flymake-diagnostics)))

(defun drive-events-text (server)
  (with-current-buffer (jsonrpc-events-buffer server) (buffer-string)))

(defun drive-edit-and-save (find replace)
  (goto-char (point-min))
  (unless (search-forward find nil t) (error "%S is not in the buffer" find))
  (replace-match replace t t)
  (save-buffer))

(defun drive-save-step (server name find replace &optional wanted)
  "Edits, saves, and waits for the server's log line of the save; with WANTED (a predicate on a
diagnostic), for a flymake diagnostic it accepts too."
  (let ((logged (length (drive-events-text server))))
    (drive-edit-and-save find replace)
    (drive-wait (format "the log message of save %s" name)
                (lambda () (string-match-p "hotd: app\\.py \\(in pid\\|has syntax errors\\)"
                                           (substring (drive-events-text server) logged))))
    (when wanted
      (drive-wait (format "the diagnostic of save %s" name)
                  (lambda () (seq-find wanted (drive-diagnostics)))))
    (push `((step . ,name) (diagnostics . ,(vconcat (drive-diagnostics)))) drive-steps)))

(defun drive-line-of (text)
  (save-excursion (goto-char (point-min)) (search-forward text) (line-number-at-pos)))

(defun drive ()
  (setq eglot-server-programs `((python-mode . (,(getenv "HOTD_BINARY") "lsp"))))
  (find-file (car command-line-args-left))
  (python-mode)
  (apply #'eglot--connect (eglot--guess-contact))
  (let ((server (drive-wait "eglot to connect" #'eglot-current-server))
        (exit-status nil))
    (unwind-protect
        (progn
          (drive-save-step server "update" "    return \"hello\"" "    return \"hello from emacs\"")
          (drive-save-step server "rude" "    x: int = 0" "    x: int = 0\n    y: int = 0"
                           (lambda (d) (string-match-p "fields of dataclass" (alist-get 'text d))))
          (drive-save-step server "syntax" "def greeting():" "def greeting(:"
                           (let ((line (drive-line-of "def greeting():")))
                             (lambda (d) (= (alist-get 'line d) line))))
          ;; eglot-shutdown's own messages (`shutdown' and `exit' with null params); eglot itself then
          ;; deletes the process at once, which would hide the exit status hotd chose.
          (jsonrpc-request server :shutdown nil :timeout 10)
          (jsonrpc-notify server :exit nil)
          (let ((process (jsonrpc--process server)))
            (drive-wait "hotd lsp to exit" (lambda () (not (process-live-p process))))
            (setq exit-status (process-exit-status process))))
      (with-temp-file (getenv "HOTD_EMACS_EVENTS") (insert (drive-events-text server))))
    exit-status))

(condition-case failure
    (progn (drive-write-result nil (drive)) (kill-emacs 0))
  (error (drive-write-result (error-message-string failure) nil) (kill-emacs 1)))
