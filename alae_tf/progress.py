"""Progress lines: how long something took and how long is left, in a few characters."""


def format_duration(seconds, coarse=False):
    """``42s``, ``1m20s``, ``2h05m``; ``coarse`` rounds to whole minutes from a minute on (an
    estimate: ``9m``)."""
    seconds = round(seconds / 60) * 60 if coarse and seconds >= 60 else round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m" if coarse else f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
