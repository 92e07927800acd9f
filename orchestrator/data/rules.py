"""A transparent lexicon labeler: a baseline, not clinical ground truth.

It reads only the client's turns, counts cue phrases and maps counts to the
task's levels. It does not understand negation or who a phrase is about
("他自杀以求我原谅" is flagged), which is why it is a baseline row in the
comparison table and never a substitute for labels by a clinician or a
strong teacher model.
"""

from __future__ import annotations

# Checked in this order: the first risk class with a hit wins.
RISK_LEXICON = {
    "suicidal": ("自杀", "轻生", "不想活", "活着没意思", "活着没有意义", "结束生命", "想死", "去死", "跳楼", "遗书"),
    "self_harm": ("自残", "割腕", "伤害自己", "划伤自己", "割自己", "打自己", "烫自己"),
    "violence": ("杀了他", "杀了她", "杀了那个人", "打死", "报复", "弄死", "砍人"),
}
DEPRESSION_CUES = (
    "抑郁",
    "绝望",
    "无助",
    "没有意义",
    "毫无意义",
    "提不起兴趣",
    "没兴趣",
    "空虚",
    "自卑",
    "没动力",
    "疲惫",
    "低落",
    "难过",
    "痛苦",
    "孤独",
    "哭",
    "没有价值",
    "自责",
    "失望",
    "心情很差",
)
ANXIETY_CUES = (
    "焦虑",
    "紧张",
    "担心",
    "害怕",
    "恐惧",
    "不安",
    "压力",
    "心慌",
    "失眠",
    "烦躁",
    "慌",
    "睡不着",
    "着急",
    "恐慌",
    "坐立不安",
    "担忧",
)
RISK_DISTRESS = {"none": 0, "suicidal": 3, "self_harm": 3, "violence": 2}


def _level(hits: int) -> int:
    """0 cues -> 0, 1-2 -> 1, 3-4 -> 2, 5+ -> 3."""
    return 0 if hits == 0 else 1 if hits <= 2 else 2 if hits <= 4 else 3


def label(client_text: str) -> dict[str, object]:
    """The four labels for a dialogue, from the client's words only."""
    risk = next((flag for flag, words in RISK_LEXICON.items() if any(w in client_text for w in words)), "none")
    depression = _level(sum(cue in client_text for cue in DEPRESSION_CUES))
    anxiety = _level(sum(cue in client_text for cue in ANXIETY_CUES))
    distress = min(9, depression + anxiety + RISK_DISTRESS[risk] + (1 if depression or anxiety else 0))
    return {
        "depression_level": depression,
        "anxiety_level": anxiety,
        "risk_flag": risk,
        "student_distress_score": distress,
    }
