"""The Anthropic Messages API (``POST /v1/messages``) over the chat-completions request path."""
