"""Anonymisation generalises: a planted corpus of identifiers written every common way, none survive;
counseling words are not blanked; on the real sample every name placeholder replaces a name-shaped word."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.data import formats
from orchestrator.data.anonymize import SURNAMES, anonymize
from orchestrator.data.clean import normalize_text

FIXTURES = Path(__file__).parent / "fixtures/cpsycoun"

# (sentence, the part that must not survive): phones with separators, spaces, +86/0086, landlines and
# parentheses, ids, e-mails, QQ/WeChat, URLs, bank cards, and names introduced in many ways.
PLANTED = [
    ("我的手机号是138-1234-5678，有事找我。", "1234"),
    ("电话：138 1234 5678", "5678"),
    ("可以打+86 139 8765 4321联系我", "8765"),
    ("号码是0086-13687654321", "13687654321"),
    ("我妈的电话+8615811112222一直打不通", "15811112222"),
    ("家里座机010-87654321", "87654321"),
    ("学校电话是(021)6543-2100", "6543"),
    ("拨打（0755）23456789", "23456789"),
    ("手机 136.1234.5678", "136.1234"),
    ("手机号：一三八一二三四五六七八", "一三八一二三四五六七八"),
    ("我的QQ是 123456789", "123456789"),
    ("扣扣号：98765432", "98765432"),
    ("加我微信 zhang_san2008 聊", "zhang_san2008"),
    ("vx：LiMing_1999", "LiMing_1999"),
    ("我的邮箱是 xiaoming.wang@163.com", "xiaoming.wang"),
    ("发到 abc123@qq.com 就行", "abc123"),
    ("身份证号11010519900307123X", "11010519900307123X"),
    ("身份证 440301 19951231 2345", "19951231"),
    ("学号：2021012345", "2021012345"),
    ("我的学号是B20190123", "B20190123"),
    ("准考证号 123456789012", "123456789012"),
    ("网址 https://weibo.com/u/123456 上有我的日记", "weibo.com/u/123456"),
    ("我在 www.douban.com/people/sadgirl 写东西", "sadgirl"),
    ("我的博客 myblog.cn/diary", "myblog.cn"),
    ("银行卡 6222021234567890123 被冻结了", "6222021234567890123"),
    ("我叫李小明，今年高二。", "李小明"),
    ("我的名字是王芳。", "王芳"),
    ("大家都叫我小雨。", "小雨"),
    ("我姓欧阳，单名一个锋字", "欧阳"),
    ("我的同桌陈静总是欺负我", "陈静"),
    ("班主任张建国老师找我谈话", "张建国"),
    ("我和男朋友刘洋分手了", "刘洋"),
    ("室友赵婷婷半夜哭", "赵婷婷"),
    ("我表哥孙浩然说我想太多", "孙浩然"),
    ("妈妈周丽华总是骂我", "周丽华"),
    ("黄老师说我成绩下滑了", "黄"),
    ("林晓雯是我最好的朋友", "林晓雯"),
    ("昨天何俊杰约我出去", "何俊杰"),
    ("小梅说她也想过死", "小梅"),
    ("我跟郭子涵吵架了", "郭子涵"),
    ("我是高三的吴思远，", "吴思远"),
    ("本人杨帆，大二学生", "杨帆"),
    ("爸爸马国强喝酒后打人", "马国强"),
    ("隔壁班的胡一菲很优秀", "胡一菲"),
    ("诸葛明说我是怪人", "诸葛明"),
    ("辅导员徐志刚让我休学", "徐志刚"),
    ("我朋友阿杰也有抑郁", "阿杰"),
    ("前任叫何晴，她离开了我", "何晴"),
    ("心理老师宋雨萱推荐我来的", "宋雨萱"),
    ("我弟弟叫朱子轩", "朱子轩"),
    ("我的微信号是13912345678", "13912345678"),
    ("联系电话 0571-8888 6666", "8888"),
    ("她的电话是159-0000-1111", "159-0000"),
    ("我女朋友叫唐诗雨", "唐诗雨"),
    ("我的小名叫豆豆", "豆豆"),
    ("有事打我电话 186 0012 3456 吧", "0012"),
    ("我爸手机+86-177-1234-9876", "1234-9876"),
    ("宿舍电话 020-3861 2345", "3861"),
    ("请拨0086 13311112222找我", "13311112222"),
    ("我的手机：15000001111，晚上再打", "15000001111"),
    ("学生证号码：20200304", "20200304"),
    ("学籍号 G440301200501011234", "G440301200501011234"),
    ("我QQ: 3344556677", "3344556677"),
    ("微信: cxy-20030915", "cxy-20030915"),
    ("邮箱 sadboy_2005@outlook.com", "sadboy_2005"),
    ("我的身份证是 32010619880815002X", "32010619880815002X"),
    ("抖音号是 https://v.douyin.com/abc123/", "abc123"),
    ("我叫陈一鸣，是初二的学生", "陈一鸣"),
    ("我的名字叫黄思琪。", "黄思琪"),
    ("同学们都叫我阿明。", "阿明"),
    ("我和同桌谢雨桐闹翻了", "谢雨桐"),
    ("数学老师王建军当众批评我", "王建军"),
    ("我舍友叫罗佳怡", "罗佳怡"),
    ("爸爸是杨志强，他经常不在家", "杨志强"),
    ("我暗恋的人叫林子墨", "林子墨"),
    ("班长邓晓峰经常嘲笑我", "邓晓峰"),
    ("我姐姐许婉清很优秀", "许婉清"),
    ("我是李思远，今年十六岁", "李思远"),
    ("好朋友郑可欣转学了", "郑可欣"),
    ("我妈总拿我跟表姐韩雪比", "韩雪"),
]


def test_the_planted_corpus_is_large_and_varied():
    assert len(PLANTED) >= 50
    assert sum("叫" in s or "名字" in s for s, _ in PLANTED) < len(PLANTED) / 4  # names mostly without a cue


@pytest.mark.parametrize(("sentence", "secret"), PLANTED)
def test_no_planted_identifier_survives(sentence, secret):
    out = anonymize(normalize_text(sentence))
    assert secret not in out, out
    assert "[" in out


COUNSELING = [
    "谢谢您，祝您和家人幸福快乐！",
    "明白了，谢谢你们的帮助。",
    "我在普通班，压力很大，考试时焦虑。",
    "我是高二女生，这段困惑期很难熬。",
    "担心会被老师叫起来回答问题。",
    "我妈妈叫我去学习，我向老师请教。",
    "那阿姨想让我多休息，我觉得很有安全感。",
    "心理咨询师教授了我放松的方法，我买了一只毛绒熊。",
    "我希望能早日康复，阳光一点，温暖一点。",
    "常常觉得自己很平静，也很乐观。",
    "我今年16岁，每天学习10个小时，2023年高考。",
    "我考了第3名，班里有45个人。",
]


@pytest.mark.parametrize("sentence", COUNSELING)
def test_counseling_words_are_not_blanked(sentence):
    assert anonymize(normalize_text(sentence)) == normalize_text(sentence)


def test_on_the_real_sample_every_name_placeholder_replaces_a_name_shaped_word():
    """Measured on real CPsyCoun text: what a [NAME] replaced starts with a surname or 小/阿 (no common words)."""
    replaced: Counter = Counter()
    counts: Counter = Counter()
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".txt", ".json"):
            continue
        for dialogue in formats.read(path):
            for turn in dialogue.turns:
                before = normalize_text(turn.text)
                after = anonymize(before, counts)
                for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
                    if op != "equal":
                        replaced[before[i1:i2]] += 1
                        assert re.fullmatch(r"(?:和)?\[NAME\]", after[j1:j2]) or "[" in after[j1:j2], after[j1:j2]
    assert counts["NAME"] >= 5, counts  # the sample has named clients and counselors
    for original in replaced:
        core = original.removeprefix("和")
        assert core[:1] in SURNAMES or core[:2] in SURNAMES or core[:1] in "小阿", (original, replaced)
