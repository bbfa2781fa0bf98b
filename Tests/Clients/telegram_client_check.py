"""Drives python-telegram-bot against Moat's fake Bot API server (FakeTelegramServer).

Usage: python telegram_client_check.py BASE_URL TOKEN
Prints one JSON object: what the library parsed, for TelegramFakeServerTests to compare with what it
scripted. The test adds updates while this script long-polls, in this order: a private message (while
the first getUpdates is held), a tap on the bot's keyboard message (while the second is held), a second
message (while the third is held, after scripting a 429 for the next sendMessage).
"""

import asyncio
import json
import sys

import telegram
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import RetryAfter
from telegram.request import HTTPXRequest

BASE_URL, TOKEN = sys.argv[1], sys.argv[2]
ALLOWED = ["message", "callback_query"]


def seconds(value):
    """RetryAfter.retry_after is an int or a timedelta, depending on the library's settings."""
    return int(value.total_seconds()) if hasattr(value, "total_seconds") else int(value)


async def poll(bot, offset):
    """One long poll that must bring exactly one update."""
    updates = await bot.get_updates(offset=offset, timeout=30, allowed_updates=ALLOWED)
    assert len(updates) == 1, f"expected one update, got {len(updates)}"
    return updates[0]


async def main():
    result = {"version": telegram.__version__}
    # The library's 5 s defaults are for Telegram's cloud; the fake runs inside a test process that, in a
    # full parallel run on two cores, can leave it unanswered for longer than that.
    def patient():
        return HTTPXRequest(connect_timeout=120, read_timeout=120, write_timeout=120, pool_timeout=120)

    async with Bot(TOKEN, base_url=BASE_URL + "/bot", request=patient(), get_updates_request=patient()) as bot:
        me = bot.bot
        result["me"] = {"id": me.id, "username": me.username, "is_bot": me.is_bot}

        # 1. Long polling brings a private message.
        update = await poll(bot, None)
        message = update.message
        result["message"] = {
            "update_id": update.update_id,
            "chat_id": message.chat.id,
            "chat_type": message.chat.type,
            "from_id": message.from_user.id,
            "username": message.from_user.username,
            "text": message.text,
        }

        # 2. A message with an inline keyboard.
        keyboard = InlineKeyboardMarkup(
            [[
                InlineKeyboardButton("Approve", callback_data="approve:k7q2mxd4"),
                InlineKeyboardButton("Deny", callback_data="deny:k7q2mxd4"),
            ]]
        )
        sent = await bot.send_message(message.chat.id, "Approve: shell `ls`?", reply_markup=keyboard)
        result["sent"] = {
            "message_id": sent.message_id,
            "text": sent.text,
            "buttons": [b.callback_data for row in sent.reply_markup.inline_keyboard for b in row],
        }

        # 3. The tap comes back as a callback query; it is answered and the buttons removed.
        update = await poll(bot, update.update_id + 1)
        query = update.callback_query
        result["callback"] = {
            "update_id": update.update_id,
            "data": query.data,
            "from_id": query.from_user.id,
            "message_id": query.message.message_id,
            "chat_instance": query.chat_instance,
        }
        result["answered"] = await bot.answer_callback_query(query.id, text="Approved")
        edited = await bot.edit_message_reply_markup(
            chat_id=query.message.chat.id, message_id=query.message.message_id, reply_markup=None
        )
        result["edited_markup"] = edited.reply_markup.to_dict() if edited.reply_markup else None

        # 4. A 429 with retry_after surfaces as RetryAfter.
        update = await poll(bot, update.update_id + 1)
        try:
            await bot.send_message(update.message.chat.id, "this one is rate limited")
            result["rate_limited"] = None
        except RetryAfter as error:
            result["rate_limited"] = {"class": type(error).__name__, "retry_after": seconds(error.retry_after)}

        # 5. The last update is confirmed: nothing is left.
        left = await bot.get_updates(offset=update.update_id + 1, timeout=0)
        result["left"] = len(left)
    print(json.dumps(result, ensure_ascii=False))


asyncio.run(main())
