"""The OpenAI Responses API (``POST /v1/responses``) over the chat-completions request path."""
