"""Demo sessions: one image and one chat history each, isolated from every other session.

The model is shared, so generation is serialised by a first-come, first-served queue (:class:`ModelQueue`) that
tells each waiting question how many are ahead of it; each session also takes its own lock, so a second question
(or a new chat) to a session that is still answering is refused instead of interleaving two turns of one history.
The store keeps at most ``max_sessions`` sessions and forgets the least recently used one first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from PIL import Image
from transformers import LlavaForConditionalGeneration

from allseeing.infer.chat import ChatSession
from allseeing.infer.generate import DecodingConfig, Generation
from allseeing.model.processor import Processor


class SessionError(LookupError):
    """A session that cannot take the request; the message is shown to the user."""


class UnknownSessionError(SessionError):
    """No such session (never made, or forgotten to make room for newer ones)."""


@dataclass
class DemoSession:
    id: str
    chat: ChatSession
    picture_format: str = "PNG"  # of the pictures shown back: JPEG for a photo uploaded as a JPEG
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def image(self) -> Image.Image:
        return self.chat.image

    @contextmanager
    def exclusive(self, refusal: str) -> Iterator[None]:
        """Hold the chat for one request; while another holds it, refuse with ``refusal`` instead of waiting."""
        if not self.lock.acquire(blocking=False):
            raise SessionError(refusal)
        try:
            yield
        finally:
            self.lock.release()


class ModelQueue:
    """The shared model, one question at a time, first come first served.

    A waiting question learns how many questions are ahead of it (the one being answered included) each time that
    number changes; the callback runs outside the queue's lock, so a slow or departed client (whose callback
    raises) never holds up the others, and leaves the queue.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._waiting: deque[object] = deque()
        self._busy = False

    @property
    def length(self) -> int:
        """Questions being answered or waiting."""
        with self._condition:
            return len(self._waiting) + self._busy

    @contextmanager
    def turn(self, on_position: Callable[[int], None] | None = None) -> Iterator[None]:
        ticket = object()
        reported = None
        with self._condition:
            self._waiting.append(ticket)
        try:
            while True:
                with self._condition:
                    ahead = self._waiting.index(ticket) + self._busy
                    if ahead == 0:
                        self._waiting.popleft()
                        self._busy = True
                        break
                    if ahead == reported or on_position is None:
                        self._condition.wait()
                        continue
                reported = ahead
                on_position(ahead)
        except BaseException:
            with self._condition:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._condition.notify_all()
            raise
        try:
            yield
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()


class SessionStore:
    def __init__(
        self,
        model: LlavaForConditionalGeneration,
        processor: Processor,
        decoding: DecodingConfig,
        max_sessions: int = 32,
    ) -> None:
        self.model, self.processor, self.decoding = model, processor, decoding
        self.max_sessions = max_sessions
        self.queue = ModelQueue()
        self._sessions: OrderedDict[str, DemoSession] = OrderedDict()
        self._store_lock = threading.Lock()

    def create(self, image: Image.Image, picture_format: str = "PNG") -> DemoSession:
        chat = ChatSession(self.model, self.processor, image, self.decoding)
        session = DemoSession(secrets.token_urlsafe(16), chat, picture_format)
        with self._store_lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: object) -> DemoSession:
        with self._store_lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
            if session is None:
                raise UnknownSessionError("unknown session: choose or upload an image to start a new chat")
            self._sessions.move_to_end(session_id)
            return session

    def ask(
        self,
        session: DemoSession,
        message: str,
        on_text: Callable[[str], None] | None = None,
        on_queued: Callable[[int], None] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> Generation:
        """One turn of ``session``; the history grows only when the answer is complete.

        ``on_queued(ahead)`` is called while the question waits for the model, each time the number of questions
        ahead of it changes; ``on_started()`` when the model takes it; ``on_text`` with each piece of the answer.
        """
        with session.exclusive("this chat is still answering the previous question"), self.queue.turn(on_queued):
            if on_started is not None:
                on_started()
            return session.chat.ask(message, on_text)

    def reset(self, session: DemoSession) -> None:
        """Forget the conversation, keep the image; refused, like a question, while the chat is answering."""
        with session.exclusive("this chat is still answering; start a new chat when the answer is complete"):
            session.chat.history.clear()
