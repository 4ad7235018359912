"""Demo sessions: one image and one chat history each, isolated from every other session.

The model is shared, so generation is serialised by one lock; each session also takes its own lock, so a second
question (or a new chat) to a session that is still answering is refused instead of interleaving two turns of one
history.
The store keeps at most ``max_sessions`` sessions and forgets the least recently used one first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
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
        self._sessions: OrderedDict[str, DemoSession] = OrderedDict()
        self._store_lock = threading.Lock()
        self._model_lock = threading.Lock()

    def create(self, image: Image.Image) -> DemoSession:
        session = DemoSession(secrets.token_urlsafe(16), ChatSession(self.model, self.processor, image, self.decoding))
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

    def ask(self, session: DemoSession, message: str, on_text: Callable[[str], None] | None = None) -> Generation:
        """One turn of ``session``; the history grows only when the answer is complete."""
        with session.exclusive("this chat is still answering the previous question"), self._model_lock:
            return session.chat.ask(message, on_text)

    def reset(self, session: DemoSession) -> None:
        """Forget the conversation, keep the image; refused, like a question, while the chat is answering."""
        with session.exclusive("this chat is still answering; start a new chat when the answer is complete"):
            session.chat.history.clear()
